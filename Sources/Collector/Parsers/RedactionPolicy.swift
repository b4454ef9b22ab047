// What the redactor removes (`Redactor` in Redaction.swift applies it), and the kinds of secret it names.

/// What the redactor removes, beyond what it always removes (the four credential headers and JWTs).
public struct RedactionPolicy: Sendable, Hashable {
    /// Extra attribute keys or header names whose whole value is a secret. Matched case-insensitively with
    /// `_` and `-` alike, against the whole key, its last dotted component, or the header name in an
    /// `http.request.header.*` / nginx `http_*` key.
    public var keys: [String] = RedactionPolicy.defaultKeys
    /// Query parameters (and JSON members) whose value is a secret, matched case-insensitively.
    public var queryParameters: [String] = RedactionPolicy.defaultQueryParameters
    /// The collector's secret for keyed fingerprints; empty: markers carry no fingerprint.
    public var hmacSecret: [UInt8] = []

    public static let defaultKeys = [
        "password", "passwd", "secret", "client_secret", "api_key", "x-api-key", "access_token", "refresh_token",
        "id_token", "private_key", "x-amz-security-token",
    ]
    public static let defaultQueryParameters = [
        "access_token", "id_token", "refresh_token", "code", "password", "client_secret", "token", "api_key",
        "apikey", "sig", "x-amz-signature", "x-amz-security-token",
    ]
    /// Always secret, whatever the configuration says.
    public static let credentialHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    public init() {}
}

/// What a marker says was removed. The raw values appear in stored markers and `audit.redacted`: never rename.
public enum SecretKind: Sendable, Hashable {
    /// The value of a credential header (`authorization`, `cookie`, …), named.
    case header(String)
    /// The value of a configured key.
    case key
    /// A JWT-shaped token.
    case jwt
    /// The value of a token-looking query parameter or JSON member, named.
    case parameter(String)
    /// The credential after `Bearer` or `Basic` in free text.
    case credential

    var label: String {
        switch self {
        case .header(let name): return name
        case .key: return "key"
        case .jwt: return "jwt"
        case .parameter(let name): return "param." + name
        case .credential: return "credential"
        }
    }
}
