import LatchkeyCore

/// One input as a template: parsing and strict rendering may fail with `CoreError`, never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTemplates(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let source = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let context: TemplateValue = ["name": "<Ada & 'Bob'>", "flag": true, "items": ["a", "b"], "t": ["x": ["y": "z"]]]
    if let template = try? Template(source: source, name: "fuzz.html") {
        _ = try? template.render(context) { name in name == "self" ? template : nil }
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer: replays the files named on the command line (crash reproducers).
@main struct ReplayTemplates {
    static func main() { FuzzReplay.run(fuzzTemplates) }
}
#endif
