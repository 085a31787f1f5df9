import Glibc
import LatchkeyCGI
import LatchkeyCore

// One executable installed under each endpoint's name (login, forgot, reset, …); the name it
// was started as picks the endpoint.
let arguments = CommandLine.arguments
let environment = Environment.current()
if arguments.count > 1 && arguments[1] == CGIApp.afterResponseFlag {
    exit(CGIApp.runAfterResponse(environment: environment))
}
exit(CGIApp.main(name: Path.basename(arguments[0]), environment: environment))
