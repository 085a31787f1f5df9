import Glibc
import LatchkeyCGI
import LatchkeyCore

/// The name this executable was started as, which picks the endpoint: one executable is
/// installed under each endpoint's name (login, forgot, reset, …). A function rather than a
/// closure in top-level code, which Swift would check at run time for running on the main actor.
func endpointName() -> String {
    guard let program = CommandLine.unsafeArgv[0] else { return "" }
    return Path.basename(String(cString: program))
}

// A listening socket on descriptor 0 means a FastCGI server started us; anything else is CGI.
if FastCGIWorker.isListening() {
    exit(FastCGIWorker(name: endpointName(), environment: Environment.current(["LATCHKEY_CONFIG", "LATCHKEY_SERVE"])).run())
}
exit(CGIApp.main(name: endpointName(), environment: Environment.current(CGIApp.variables)))
