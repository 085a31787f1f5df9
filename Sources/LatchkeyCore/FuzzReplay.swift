
/// Runs a fuzz entry point over files, for replaying what a fuzzer found without libFuzzer.
public enum FuzzReplay {
    /// Calls `entry` once with the bytes of each file named in the arguments.
    public static func run(_ entry: (UnsafePointer<UInt8>, Int) -> Int32) {
        for path in CommandLine.arguments.dropFirst() {
            let bytes = FileBytes.read(path) ?? []
            _ = bytes.withUnsafeBufferPointer { buffer in
                entry(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count)
            }
            print("replayed \(path)")
        }
    }
}
