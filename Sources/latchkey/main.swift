import Glibc
import LatchkeyAdmin
import LatchkeyCore

exit(AdminTool.main(Array(CommandLine.arguments.dropFirst()), environment: Environment.current()))
