import Glibc
import LatchkeyCGI
import LatchkeyCore

// One executable installed under each endpoint's name (login, forgot, reset, …); the name it
// was started as picks the endpoint.
exit(CGIApp.main(name: Path.basename(CommandLine.unsafeArgv[0].map { String(cString: $0) } ?? ""), environment: Environment.current(CGIApp.variables)))
