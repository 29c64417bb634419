import FuzzSupport
import MLCredAPI
@testable import MLCredProviders

/// The STS answer parser (STSProtocol.parse): what an STS endpoint, or anything that answers in
/// its place (`endpoint_url`), sends back. The first input byte picks the HTTP status, the rest
/// is the body. Properties, from the parser's own promises:
/// - it never traps;
/// - credentials it returns have the shapes AWS issues: an access key id of 16-128 upper-case
///   letters and digits, a secret key (at most 1 KiB) and session token (at most 16 KiB) of
///   printable ASCII without spaces (they reach environments and config files);
/// - a refusal's message carries no control characters (it reaches terminals and the audit
///   log) and quotes at most 300 characters of each of AWS's code and message.
let statuses = [200, 201, 204, 299, 300, 400, 403, 404, 429, 500, 503, 0, 199, 600]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSTS(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let status = statuses[Int(input.byte()) % statuses.count]
    let body = input.rest()
    do {
        let credentials = try STSProtocol.parse(status: status, body: body)
        guard (200..<300).contains(status) else { propertyFailed("credentials read from an HTTP \(status) answer") }
        let key = Array(credentials.accessKeyID.utf8)
        guard (16...128).contains(key.count), key.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) }) else {
            propertyFailed("access key id of an unexpected shape: \(credentials.accessKeyID.debugDescription)")
        }
        for (name, value, limit) in [("secret key", credentials.secretAccessKey, 1024), ("session token", credentials.sessionToken, 16384)] {
            let bytes = Array(value.utf8)
            guard !bytes.isEmpty, bytes.count <= limit, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                propertyFailed("\(name) of an unexpected shape: \(value.debugDescription)")
            }
        }
    } catch let error as APIError {
        if (200..<300).contains(status) {
            guard error.reason == .upstreamAnswerInvalid else { propertyFailed("a 2xx answer refused with \(error.reason)") }
        }
        if let control = error.message.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            propertyFailed("a control character (U+\(String(control.value, radix: 16))) in the message: \(error.message.debugDescription)")
        }
        // "STS refused the request: CODE: MESSAGE": each quoted part at most 300 characters and "...".
        let fixed = "STS refused the request: ".count + ": ".count
        let limit = fixed + 2 * (STSProtocol.maxQuotedCharacters + 3) + "HTTP ".count + 3
        guard error.message.count <= max(limit, "STS answered with credentials of an unexpected shape".count) else {
            propertyFailed("a message of \(error.message.count) characters quotes more than the limit")
        }
    } catch {
        propertyFailed("an error that is not an APIError: \(error)")
    }
    return 0
}
