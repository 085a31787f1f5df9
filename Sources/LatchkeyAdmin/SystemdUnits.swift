import Glibc
import LatchkeyCore

/// `latchkey webserver systemd`: the socket and service units that keep `latchkey serve` running.
/// systemd holds the socket (so a restart loses no connection) and passes it as descriptor 3;
/// `systemctl reload` sends SIGHUP, a rolling restart; `systemctl stop` sends SIGTERM, which
/// lets each worker finish its request.
enum SystemdUnits {
    static func run(_ invocation: Invocation) throws {
        try invocation.arguments.allow(["listen", "user", "cgi-dir"])
        let options = invocation.arguments.options
        let config = try invocation.config()
        let user = options["user"] ?? "www-data"
        let listen = options["listen"] ?? "unix:/run/latchkey/latchkey.sock"
        let stream = listen.hasPrefix("unix:") ? String(listen.dropFirst(5)) : listen
        let cgiDir = try WebserverCommand.cgiDir(options["cgi-dir"])
        Console.out("""
        # /etc/systemd/system/latchkey.socket — made by `latchkey webserver systemd` for \(config.siteName).
        [Unit]
        Description=Latchkey FastCGI socket for \(config.siteName)

        [Socket]
        ListenStream=\(stream)
        SocketUser=\(user)
        SocketGroup=\(user)
        SocketMode=0660
        Backlog=511

        [Install]
        WantedBy=sockets.target

        # /etc/systemd/system/latchkey.service
        [Unit]
        Description=Latchkey FastCGI workers for \(config.siteName)
        Requires=latchkey.socket
        After=network.target

        [Service]
        User=\(user)
        Group=\(user)
        Environment=LATCHKEY_CONFIG=\(config.file)
        ExecStart=\(Subprocess.currentExecutable()) serve --cgi-dir \(cgiDir)
        ExecReload=/bin/kill -HUP $MAINPID
        KillMode=mixed
        TimeoutStopSec=35
        Restart=on-failure
        NoNewPrivileges=yes
        ProtectSystem=full
        PrivateTmp=yes

        [Install]
        WantedBy=multi-user.target

        # Then: systemctl daemon-reload && systemctl enable --now latchkey.socket latchkey.service
        """)
    }
}
