import LatchkeyCGI
import LatchkeyCore

/// One input through every request parser: form body, query string and Cookie header, the
/// API's JSON body, Stripe's signature header, and what is read from headers and config
/// (user agents, webhook URLs).
/// None may crash, whatever the bytes; bad input is an `HTTPError`, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForms(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? FormData(urlEncoded: bytes)
    let text = String(decoding: bytes, as: UTF8.self)
    let request = CGIRequest(environment: ["REQUEST_METHOD": "GET", "QUERY_STRING": text, "HTTP_COOKIE": text,
                                           "CONTENT_LENGTH": text, "HTTP_ORIGIN": text, "HTTPS": text])
    _ = try? request.query()
    _ = request.cookie("lk_session")
    _ = try? JSONValue.parse(bytes)
    try? StripeSignature.verify(header: text, body: bytes, secret: "whsec_fuzz", now: 1_700_000_000)
    _ = UserAgent.describe(text)
    _ = SiteConfig.isAllowedWebhookURL(text)
    return 0
}

#if !FUZZING
/// Without libFuzzer: replays the files named on the command line (crash reproducers).
@main struct ReplayForms {
    static func main() { FuzzReplay.run(fuzzForms) }
}
#endif
