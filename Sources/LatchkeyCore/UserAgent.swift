/// The browser and system a `User-Agent` names, in words a customer recognises on their
/// list of sessions ("Firefox on Windows"). Order matters: Edge and Opera also say Chrome,
/// Chrome also says Safari, Android also says Linux.
public enum UserAgent {
    /// `(browser, system)`; either is empty when the agent does not say.
    public static func describe(_ agent: String) -> (browser: String, system: String) {
        let browsers = [("Edg/", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"), ("Firefox/", "Firefox"),
                        ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"),
                        ("Safari/", "Safari"), ("curl/", "curl")]
        let systems = [("iPhone", "iOS"), ("iPad", "iPadOS"), ("Android", "Android"), ("Windows", "Windows"), ("Mac OS X", "macOS"),
                       ("Macintosh", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux")]
        let browser = browsers.first { agent.includes($0.0) }?.1 ?? ""
        let system = systems.first { agent.includes($0.0) }?.1 ?? ""
        return (browser, system)
    }
}
