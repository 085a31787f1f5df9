import Glibc
import LatchkeyAccounts
import LatchkeyCore
import LatchkeyMail

/// `latchkey`: the dispatch table from command words to the function that runs them.
public enum AdminTool {
    /// One command: its words, a line of usage, and what runs it.
    struct Command: Sendable {
        let words: [String]
        let usage: String
        let summary: String
        let run: @Sendable (Invocation) throws -> Void
    }

    static let commands: [Command] = [
        Command(words: ["init"], usage: "init [DIR]", summary: "scaffold a site folder, a secret key and an empty database", run: InitCommand.run),
        Command(words: ["build"], usage: "build", summary: "render the static pages into the output folder", run: BuildCommand.run),
        Command(words: ["user", "add"], usage: "user add EMAIL [--name N] [--offer SLUG] [--no-email]",
                summary: "create a customer and email a set-password link", run: UserCommands.add),
        Command(words: ["contact", "add"], usage: "contact add EMAIL [--name N]", summary: "add a contact without login access", run: UserCommands.addContact),
        Command(words: ["user", "reset"], usage: "user reset EMAIL", summary: "email a reset link and print it", run: UserCommands.reset),
        Command(words: ["user", "set-password"], usage: "user set-password EMAIL [--temporary] [--notify]",
                summary: "set a password read from the terminal or stdin", run: UserCommands.setPassword),
        Command(words: ["user", "show"], usage: "user show EMAIL [--json]",
                summary: "the record: access, logins, sessions, the live reset link, email history", run: PersonCommands.show),
        Command(words: ["user", "find"], usage: "user find QUERY [--json]", summary: "search people by email or name", run: PersonCommands.find),
        Command(words: ["user", "set-email"], usage: "user set-email EMAIL NEW_EMAIL",
                summary: "fix a wrong address: voids links, ends sessions, tells the old address", run: PersonCommands.setEmail),
        Command(words: ["user", "disable"], usage: "user disable EMAIL", summary: "close login (nothing is lost)", run: PersonCommands.disable),
        Command(words: ["user", "enable"], usage: "user enable EMAIL", summary: "reopen login", run: PersonCommands.enable),
        Command(words: ["user", "delete"], usage: "user delete EMAIL --yes", summary: "erase a person; the audit keeps only that it happened", run: PersonCommands.delete),
        Command(words: ["welcome", "resend"], usage: "welcome resend EMAIL",
                summary: "resend the welcome email without changing the password", run: PersonCommands.resendWelcome),
        Command(words: ["import", "csv"], usage: "import csv FILE [--offer SLUG] [--dry-run]",
                summary: "create or update people from a CSV with email and name columns", run: ImportCommand.run),
        Command(words: ["offer", "add"], usage: "offer add SLUG --name N", summary: "add an offer (a membership)", run: AccessCommands.addOffer),
        Command(words: ["offer", "list"], usage: "offer list [--json]", summary: "list offers", run: AccessCommands.listOffers),
        Command(words: ["access", "grant"], usage: "access grant EMAIL OFFER [--no-email]",
                summary: "grant access; makes a contact a customer and sends the welcome email", run: AccessCommands.grant),
        Command(words: ["access", "revoke"], usage: "access revoke EMAIL OFFER", summary: "revoke access", run: AccessCommands.revoke),
        Command(words: ["mail", "log"], usage: "mail log [EMAIL] [--failed] [--json]", summary: "email history with status", run: MailCommands.log),
        Command(words: ["mail", "retry"], usage: "mail retry ID | --failed",
                summary: "send one message (or every failed one) again now", run: MailCommands.retry),
        Command(words: ["mail", "deliver"], usage: "mail deliver", summary: "deliver every message and webhook that is due (for cron)", run: MailCommands.deliver),
        Command(words: ["api-key", "add"], usage: "api-key add NAME --scopes people:read,people:write,access:write,mail:send,links:read",
                summary: "make an API key (printed once; stored as a keyed hash)", run: IntegrationCommands.addKey),
        Command(words: ["api-key", "list"], usage: "api-key list [--json]", summary: "the API keys with scopes and last use", run: IntegrationCommands.listKeys),
        Command(words: ["api-key", "revoke"], usage: "api-key revoke NAME", summary: "stop an API key working", run: IntegrationCommands.revokeKey),
        Command(words: ["webhook", "log"], usage: "webhook log [--failed] [--json]", summary: "outbound event deliveries with status", run: IntegrationCommands.log),
        Command(words: ["webhook", "retry"], usage: "webhook retry ID", summary: "send one delivery again now", run: IntegrationCommands.retry),
        Command(words: ["webhook", "secret"], usage: "webhook secret", summary: "print a new whsec_ secret for a webhooks entry", run: IntegrationCommands.secret),
        Command(words: ["staff", "add"], usage: "staff add EMAIL --role viewer|support|manager|owner [--name N]",
                summary: "add a staff console account; prints and emails its enrolment link (24 h)", run: StaffCommands.add),
        Command(words: ["staff", "list"], usage: "staff list [--json]", summary: "the staff accounts with role and state", run: StaffCommands.list),
        Command(words: ["staff", "role"], usage: "staff role EMAIL ROLE", summary: "change a staff member's role", run: StaffCommands.setRole),
        Command(words: ["staff", "disable"], usage: "staff disable EMAIL", summary: "close a staff member's console login", run: StaffCommands.disable),
        Command(words: ["staff", "enable"], usage: "staff enable EMAIL", summary: "reopen a staff member's console login", run: StaffCommands.enable),
        Command(words: ["staff", "remove"], usage: "staff remove EMAIL --yes", summary: "remove a staff account", run: StaffCommands.remove),
        Command(words: ["staff", "reset-2fa"], usage: "staff reset-2fa EMAIL",
                summary: "a lost phone: void the second factor and codes, end sessions, print a new enrolment link", run: StaffCommands.resetSecondFactor),
        Command(words: ["audit"], usage: "audit [--person EMAIL] [--actor WHO] [--action A] [--since 7d] [--json]",
                summary: "read the audit trail, newest first", run: AuditCommand.run),
        Command(words: ["doctor"], usage: "doctor [--user www-data] [--cgi-dir DIR] [--url http://HOST:PORT/]",
                summary: "check a deployment: permissions, paths, CGIs, mail transport, and the live site", run: DoctorCommand.run),
        Command(words: ["webserver"], usage: "webserver apache|nginx|lighttpd [--fastcgi] [--standalone --listen 127.0.0.1:PORT --runtime-dir DIR [--tls-cert FILE --tls-key FILE]] [--cgi-dir DIR]",
                summary: "print a web-server config for this site (--fastcgi: persistent workers)", run: WebserverCommand.run),
        Command(words: ["webserver", "systemd"], usage: "webserver systemd [--listen unix:PATH] [--user www-data] [--cgi-dir DIR]",
                summary: "print the systemd socket and service units that run latchkey serve", run: SystemdUnits.run),
        Command(words: ["serve"], usage: "serve --listen unix:PATH|127.0.0.1:PORT [--workers N] [--user www-data] [--cgi-dir DIR]",
                summary: "run the FastCGI workers for nginx or Apache mod_proxy_fcgi (SIGHUP: rolling restart)", run: ServeCommand.run),
    ]

    /// Runs `argv` (without the program name) and returns the exit status.
    public static func main(_ argv: [String], environment: [String: String]) -> Int32 {
        do {
            let arguments = try Arguments(argv)
            guard let command = commands.last(where: { arguments.words.starts(with: $0.words) }) else {
                if arguments.words.isEmpty, let unknown = arguments.flags.subtracting(["help"]).sorted().first ?? arguments.options.keys.filter({ $0 != "config" }).sorted().first {
                    throw CommandError("unknown option --\(unknown) (see latchkey --help)")
                }
                if arguments.words.isEmpty || arguments.flags.contains("help") || arguments.words == ["help"] {
                    Console.out(help)
                    return 0
                }
                throw CommandError("unknown command '\(arguments.words.joined(separator: " "))' (see latchkey --help)")
            }
            if arguments.flags.contains("help") {
                Console.out("usage: latchkey \(command.usage) [--config FILE]\n\n\(command.summary).")
                return 0
            }
            let invocation = Invocation(arguments: arguments, environment: environment, depth: command.words.count)
            try command.run(invocation)
            invocation.sendEvents()
            return 0
        } catch {
            Console.err("error: \(error)")
            return 1
        }
    }

    static var help: String {
        let lines = commands.map { "  latchkey \($0.usage)\n      \($0.summary)" }
        return """
        latchkey — branded login and password recovery for membership sites

        usage:
        \(lines.joined(separator: "\n"))

        Every command takes --config FILE (else $LATCHKEY_CONFIG, else ./site/latchkey.json) and --help.
        """
    }
}

/// One run of a command: its arguments, environment, and the site config when it needs one.
struct Invocation {
    let arguments: Arguments
    let environment: [String: String]
    /// How many words named the command; the command's own words come after.
    let depth: Int

    /// The command's positional word `index` (0-based, after the command's name).
    func word(_ index: Int, _ what: String) throws -> String { try arguments.word(depth + index, what) }

    /// Positional words after the command's name.
    var rest: [String] { Array(arguments.words.dropFirst(depth)) }

    /// The config file's path by the SPEC's rule.
    var configPath: String { SiteConfig.locate(explicit: arguments.options["config"], environment: environment) }

    /// Loads the site config.
    func config() throws -> SiteConfig { try SiteConfig.load(file: configPath) }

    /// The services the command opened, so the events it recorded can be sent when it is done.
    let opened = Opened()

    /// Opens the site's key and database, bringing the schema up to date first.
    func services() throws -> Services {
        let services = try Services(config: try config())
        try services.db.migrate()
        opened.services.append(services)
        return services
    }

    /// Sends the outbound events the command recorded, as a CGI does after answering; what
    /// fails stays recorded for `mail deliver` (cron) and `webhook retry`.
    func sendEvents() {
        for services in opened.services where services.db.eventsRecorded > 0 {
            do {
                let result = try WebhookSender(config: services.config, db: services.db).deliverDue(now: Clock.now())
                if result.failed > 0 { Console.err("warning: \(result.failed) webhook deliveries failed; they are retried (latchkey webhook log --failed)") }
            } catch {
                Console.err("warning: webhooks not sent (\(error)); latchkey mail deliver sends them")
            }
        }
    }

    /// A box for what `services()` opened.
    final class Opened { var services: [Services] = [] }

    /// The operator as the core's actor.
    var actor: Support.Actor { Support.Actor(`operator`) }

    /// Who is running the command, for the audit trail.
    var `operator`: String {
        for key in ["SUDO_USER", "USER", "LOGNAME"] { if let v = environment[key], !v.isEmpty { return v } }
        return "uid \(getuid())"
    }
}
