import Glibc
import MLCredAPI

/// Reads a 32-byte key file: raw bytes, or base64 text of 32 bytes.
public enum KeyFile {
    public static func read(path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        let bytes = Array(buffer.prefix(count))
        if bytes.count == 32 { return bytes }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\r", "\t"])
        if let decoded = Base64.decode(text), decoded.count == 32 { return decoded }
        return nil
    }
}
