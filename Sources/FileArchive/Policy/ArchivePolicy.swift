import Mapping

/// A URL read from its text without normalising it: scheme, host and port are
/// derived for policy checks, while `text` stays byte-exact for the request
/// (a signed URL must be sent as it was signed).
///
/// Hand-written rather than Foundation's `URL`: `URL`/`URLComponents` may
/// re-encode the path or query, and their host parsing differs from curl's on
/// odd inputs; this parser is strict instead and refuses what it cannot read
/// unambiguously (userinfo, whitespace, backslashes, percent signs in hosts).
public struct RawURL: Sendable, Hashable, CustomStringConvertible {
    /// Exactly as given: this, never a rebuilt form, is what gets requested.
    public let text: String
    /// Lowercased.
    public let scheme: String
    /// Lowercased, without IPv6 brackets or a trailing dot.
    public let host: String
    /// Only when written in the URL; `nil` means the scheme's default.
    public let port: Int?
    /// Everything after the authority (path, query, fragment), as written.
    public let rest: Substring

    /// `nil` for anything it cannot read unambiguously: controls, spaces,
    /// backslashes, userinfo, a `%` in the host, a bad port, a missing `//`.
    public init?(_ text: String) {
        for byte in text.utf8 where byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") { return nil }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let scheme = text[..<colon]
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return nil }
        let afterScheme = text[text.index(after: colon)...]
        guard afterScheme.hasPrefix("//") else { return nil }
        let authorityStart = afterScheme.index(afterScheme.startIndex, offsetBy: 2)
        let authorityEnd = afterScheme[authorityStart...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[authorityStart..<authorityEnd]
        // Userinfo would let "https://jobylon.com@evil.example/" pass a naive check.
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("%") else { return nil }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let tail = authority[authority.index(after: close)...]
            if !tail.isEmpty {
                guard tail.hasPrefix(":") else { return nil }
                portText = tail.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let portColon = authority.lastIndex(of: ":") {
                host = authority[..<portColon]
                portText = authority[authority.index(after: portColon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }) else {
                return nil
            }
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        guard !host.isEmpty else { return nil }
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let value = Int(portText), (1...65535).contains(value)
            else {
                return nil
            }
            port = value
        }
        self.text = text
        self.scheme = scheme.lowercased()
        self.host = host.lowercased()
        self.port = port
        self.rest = afterScheme[authorityEnd...]
    }

    /// `scheme://host[:port]`, for messages: never the path or query (signatures, names).
    public var origin: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart)" + (port.map { ":\($0)" } ?? "")
    }

    public var description: String { origin + "/…" }

    /// The target of a redirect's `Location`, resolved against this URL (RFC 3986
    /// §5.2 for the forms servers send: absolute, scheme-relative, absolute-path,
    /// query-only and relative path). The location's own bytes are kept as sent.
    public func resolving(_ location: String) -> RawURL? {
        let location = location.trimmingWhitespace()
        if location.isEmpty { return nil }
        if location.hasPrefix("//") { return RawURL(scheme + ":" + location) }
        if let colon = location.firstIndex(of: ":"),
            location[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
            !location[..<colon].contains("/")
        {
            return RawURL(location)
        }
        let base = text[..<(text.index(text.endIndex, offsetBy: -rest.count))]
        if location.hasPrefix("/") { return RawURL(base + location) }
        let pathEnd = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let path = rest[..<pathEnd]
        if location.hasPrefix("?") { return RawURL(base + path + location) }
        if location.hasPrefix("#") { return self }
        let directory = path.lastIndex(of: "/").map { path[...$0] } ?? "/"
        return RawURL(base + directory + location)
    }
}

/// A host pattern of an allow-list: `jobylon.com` (that host) or
/// `*.amazonaws.com` (any host below it, not the apex).
public struct HostPattern: Sendable, Hashable, CustomStringConvertible {
    /// As configured, for messages.
    public let text: String
    let suffix: String?
    let exact: String?

    /// `nil` for a pattern that could match too much or nothing sensible: a
    /// wildcard anywhere but a leading `*.`, a one-label suffix (`*.com`), a
    /// path or userinfo.
    public init?(_ text: String) {
        var value = text.lowercased()
        if value.hasSuffix(".") { value.removeLast() }
        guard !value.isEmpty, !value.contains("/"), !value.contains("@") else { return nil }
        if value.hasPrefix("*.") {
            let rest = String(value.dropFirst(2))
            guard !rest.isEmpty, !rest.contains("*"), rest.contains(".") else { return nil }
            suffix = "." + rest
            exact = nil
        } else {
            guard !value.contains("*") else { return nil }
            if value.hasPrefix("["), value.hasSuffix("]") { value = String(value.dropFirst().dropLast()) }
            suffix = nil
            exact = value
        }
        self.text = text
    }

    /// An explicit host (not a wildcard): the operator named exactly this machine.
    public var isExplicitHost: Bool { exact != nil }

    /// Exact for a host; a wildcard matches strictly below its suffix, never the
    /// apex. `host` must already be lowercased, as `RawURL.host` is.
    public func matches(_ host: String) -> Bool {
        if let exact { return host == exact }
        if let suffix { return host.hasSuffix(suffix) && host.count > suffix.count }
        return false
    }

    public var description: String { text }
}

/// Which file URLs the archive may fetch, checked on the first URL and on
/// every redirect. Built-in Jobylon/S3 hosts and a mapping's patterns are
/// https-only and must resolve to public addresses; hosts the operator lists
/// explicitly (`archive_allowed_hosts`, no wildcard) may also use http and
/// private or loopback addresses (an on-premises store, a test server).
public struct ArchiveHostPolicy: Sendable {
    /// Always allowed, for https and public addresses only: Jobylon's hosts and S3.
    public static let builtInPatterns = ["jobylon.com", "*.jobylon.com", "*.amazonaws.com"]

    /// The verdict on one URL, the first or a redirect target.
    public enum Decision: Sendable, Hashable {
        /// Fetch; `privateAddresses` lets the connection go to non-public addresses.
        case allowed(privateAddresses: Bool)
        case refused(reason: String)
    }

    let publicPatterns: [HostPattern]
    let operatorPatterns: [HostPattern]

    /// `mappingPatterns` come from the mapping's `allowed_hosts`; `operatorPatterns` from the configuration.
    public init(mappingPatterns: [String], operatorPatterns: [String]) {
        self.publicPatterns = (ArchiveHostPolicy.builtInPatterns + mappingPatterns).compactMap(HostPattern.init)
        self.operatorPatterns = operatorPatterns.compactMap(HostPattern.init)
    }

    /// Run on the first URL and again on every redirect target; refusals name
    /// the host, never the path or query.
    public func check(_ url: RawURL) -> Decision {
        guard url.scheme == "https" || url.scheme == "http" else {
            return .refused(reason: "scheme '\(url.scheme)' is not allowed for archive downloads (https only)")
        }
        if operatorPatterns.contains(where: { $0.isExplicitHost && $0.matches(url.host) }) {
            return .allowed(privateAddresses: true)
        }
        let listed = publicPatterns.contains { $0.matches(url.host) } || operatorPatterns.contains { $0.matches(url.host) }
        guard listed else {
            return .refused(
                reason: "host \(url.host) is not in the archive allow-list (built-in hosts, the mapping's allowed_hosts, archive_allowed_hosts)")
        }
        guard url.scheme == "https" else {
            return .refused(reason: "\(url.origin) is plain http: only hosts listed explicitly in archive_allowed_hosts may use http")
        }
        return .allowed(privateAddresses: false)
    }
}

/// Classifies the address a connection is about to use. The archive refuses
/// every class here unless the host was listed explicitly: a signed URL (or a
/// redirect) must not reach the cloud metadata service or the internal network.
public enum AddressClass: String, Sendable, Hashable {
    case unspecified = "unspecified (0.0.0.0/::)"
    case loopback
    case privateNetwork = "private network"
    case linkLocal = "link-local (incl. cloud metadata)"
    case carrierGradeNAT = "carrier-grade NAT"
    case uniqueLocal = "unique-local"
    case multicast
    case reserved = "reserved/documentation"

    /// `nil` for a public address. `bytes` is 4 (IPv4) or 16 (IPv6) bytes, network order.
    public static func classify(_ bytes: [UInt8]) -> AddressClass? {
        if bytes.count == 4 { return classifyV4(bytes[0], bytes[1], bytes[2], bytes[3]) }
        guard bytes.count == 16 else { return .reserved }
        let zeroPrefix10 = bytes[0..<10].allSatisfy { $0 == 0 }
        // IPv4-mapped (::ffff:a.b.c.d) and the NAT64 well-known prefix carry an IPv4 address.
        if zeroPrefix10 && bytes[10] == 0xFF && bytes[11] == 0xFF { return classifyV4(bytes[12], bytes[13], bytes[14], bytes[15]) }
        if bytes[0] == 0x00, bytes[1] == 0x64, bytes[2] == 0xFF, bytes[3] == 0x9B, bytes[4..<12].allSatisfy({ $0 == 0 }) {
            return classifyV4(bytes[12], bytes[13], bytes[14], bytes[15])
        }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) {
            return bytes[15] == 1 ? .loopback : .unspecified
        }
        if zeroPrefix10 && bytes[10] == 0 && bytes[11] == 0 { return .reserved }  // IPv4-compatible, deprecated
        if bytes[0] & 0xFE == 0xFC { return .uniqueLocal }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return .linkLocal }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return .privateNetwork }  // site-local, deprecated
        if bytes[0] == 0xFF { return .multicast }
        if bytes[0] == 0x20, bytes[1] == 0x01, bytes[2] == 0x0D, bytes[3] == 0xB8 { return .reserved }
        return nil
    }

    static func classifyV4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> AddressClass? {
        switch (a, b, c) {
        case (0, _, _): return .unspecified
        case (10, _, _): return .privateNetwork
        case (100, 64...127, _): return .carrierGradeNAT
        case (127, _, _): return .loopback
        case (169, 254, _): return .linkLocal
        case (172, 16...31, _): return .privateNetwork
        case (192, 168, _): return .privateNetwork
        case (192, 0, 0), (192, 0, 2), (198, 51, 100), (203, 0, 113), (198, 18...19, _): return .reserved
        case (224...239, _, _): return .multicast
        case (240...255, _, _): return .reserved
        default: return nil
        }
    }

    /// The text form of an address for messages (addresses are not personal data).
    public static func text(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        var i = 0
        while i + 1 < bytes.count {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
            i += 2
        }
        return groups.joined(separator: ":")
    }
}

/// Names in the archive. Every path segment comes from a webhook or a URL, so
/// each one is checked or cleaned before it touches the file system.
public enum ArchiveNames {
    /// A refusal naming the unsafe part (ids and kinds are not personal data).
    public struct UnsafeName: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Validates a rendered `directory` (e.g. `company/candidate`): relative,
    /// no `.`/`..`/empty/hidden segments, conservative characters only.
    public static func directorySegments(_ rendered: String) throws(UnsafeName) -> [String] {
        if rendered.hasPrefix("/") { throw UnsafeName(description: "archive directory must be relative, got an absolute path") }
        let segments = rendered.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !segments.isEmpty, segments.count <= 8 else { throw UnsafeName(description: "archive directory must have 1 to 8 segments") }
        for segment in segments {
            try checkSegment(segment, what: "archive directory segment")
        }
        return segments
    }

    /// A file kind (e.g. `cv`, `other-2`) as it appears in the file name.
    public static func checkKind(_ kind: String) throws(UnsafeName) {
        try checkSegment(kind, what: "file kind")
    }

    static func checkSegment(_ segment: String, what: String) throws(UnsafeName) {
        if segment.isEmpty { throw UnsafeName(description: "\(what) is empty") }
        if segment == "." || segment == ".." { throw UnsafeName(description: "\(what) '\(segment)' would leave the archive (path traversal)") }
        if segment.hasPrefix(".") { throw UnsafeName(description: "\(what) '\(segment.prefix(40))' starts with a dot") }
        if segment.utf8.count > 128 { throw UnsafeName(description: "\(what) is longer than 128 bytes") }
        let allowed = segment.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                    || "-_.@+=".unicodeScalars.contains(scalar))
        }
        if !allowed {
            throw UnsafeName(
                description: "\(what) '\(segment.prefix(40).filter { $0.isASCII && !$0.isWhitespace })…' has characters outside [A-Za-z0-9-_.@+=]")
        }
    }

    /// The original file name from the URL's last path segment, percent-decoded
    /// and cleaned: no directory parts, control characters or leading dots,
    /// at most 200 bytes. Recorded as metadata; a stored name takes at most its
    /// extension (when sniffing finds none).
    public static func originalName(urlWithoutQuery: String) -> String? {
        guard let slash = urlWithoutQuery.lastIndex(of: "/") else { return nil }
        let segment = urlWithoutQuery[urlWithoutQuery.index(after: slash)...]
        return clean(percentDecoded(String(segment)))
    }

    /// Cleans a name from an untrusted source (URL, Content-Disposition).
    public static func clean(_ name: String) -> String? {
        // Keep only the last component under either separator: "../../x" → "x".
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var cleaned = String(
            String.UnicodeScalarView(
                last.unicodeScalars.filter { scalar in
                    !(scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0x202E
                        || scalar.value == 0x202D)
                }))
        while cleaned.hasPrefix(".") || cleaned.hasPrefix(" ") { cleaned.removeFirst() }
        while cleaned.hasSuffix(" ") { cleaned.removeLast() }
        while cleaned.utf8.count > 200 { cleaned.removeLast() }
        return cleaned.isEmpty ? nil : cleaned
    }

    /// The extension of a cleaned name, if it is short and alphanumeric.
    public static func fileExtension(of name: String) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let ext = name[name.index(after: dot)...].lowercased()
        guard (1...8).contains(ext.count), ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        return ext
    }

    /// Decodes `%XX`; malformed escapes stay as written and invalid UTF-8
    /// becomes U+FFFD. Untrusted output: `clean` it before use.
    public static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "%"), i + 2 < utf8.count, let high = hexValue(utf8[i + 1]), let low = hexValue(utf8[i + 2]) {
                bytes.append(high << 4 | low)
                i += 3
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// What a file's first bytes say it is. The declared `Content-Type` of a
/// signed download is often `application/octet-stream` or wrong; the archive
/// records both and flags a mismatch (it never refuses a file for it).
public struct SniffedType: Sendable, Hashable {
    /// Recorded beside the declared `Content-Type`.
    public var mediaType: String
    /// The stored name's extension; it wins over the one in the server's or the URL's name.
    public var fileExtension: String

    /// Reads only the bytes given (the archive keeps the first 512); `nil` when
    /// no known signature matches and the bytes are not UTF-8 text.
    public static func sniff(_ prefix: [UInt8]) -> SniffedType? {
        func starts(_ magic: [UInt8]) -> Bool { prefix.count >= magic.count && Array(prefix[0..<magic.count]) == magic }
        if starts(Array("%PDF-".utf8)) { return SniffedType(mediaType: "application/pdf", fileExtension: "pdf") }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return SniffedType(mediaType: "image/png", fileExtension: "png") }
        if starts([0xFF, 0xD8, 0xFF]) { return SniffedType(mediaType: "image/jpeg", fileExtension: "jpg") }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return SniffedType(mediaType: "image/gif", fileExtension: "gif") }
        if starts([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) { return SniffedType(mediaType: "application/msword", fileExtension: "doc") }
        if starts(Array("{\\rtf".utf8)) { return SniffedType(mediaType: "application/rtf", fileExtension: "rtf") }
        if starts([0x50, 0x4B, 0x03, 0x04]) {
            let text = String(decoding: prefix, as: UTF8.self)
            if text.contains("word/") {
                return SniffedType(mediaType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", fileExtension: "docx")
            }
            if text.contains("xl/") {
                return SniffedType(mediaType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", fileExtension: "xlsx")
            }
            if text.contains("ppt/") {
                return SniffedType(mediaType: "application/vnd.openxmlformats-officedocument.presentationml.presentation", fileExtension: "pptx")
            }
            if text.contains("mimetypeapplication/vnd.oasis.opendocument.text") {
                return SniffedType(mediaType: "application/vnd.oasis.opendocument.text", fileExtension: "odt")
            }
            return SniffedType(mediaType: "application/zip", fileExtension: "zip")
        }
        let head = String(decoding: prefix.prefix(64), as: UTF8.self).lowercased().drop(while: { $0.isWhitespace })
        if head.hasPrefix("<!doctype html") || head.hasPrefix("<html") { return SniffedType(mediaType: "text/html", fileExtension: "html") }
        if head.hasPrefix("<?xml") { return SniffedType(mediaType: "application/xml", fileExtension: "xml") }
        if !prefix.isEmpty, !prefix.contains(0), String(validating: prefix.prefix(prefix.count - trailingPartialScalar(prefix)), as: UTF8.self) != nil
        {
            return SniffedType(mediaType: "text/plain", fileExtension: "txt")
        }
        return nil
    }

    /// A prefix cut mid-character is still text: ignore up to 3 trailing bytes of an unfinished scalar.
    static func trailingPartialScalar(_ bytes: [UInt8]) -> Int {
        var count = 0
        for byte in bytes.reversed().prefix(3) {
            if byte & 0xC0 == 0x80 {
                count += 1
                continue
            }
            if byte & 0xC0 == 0xC0 { return count + 1 }
            return 0
        }
        return 0
    }

    /// A description of the mismatch between what the server declared and
    /// what the bytes are, or `nil` when they agree or nothing was declared.
    public static func mismatch(declared: String?, sniffed: SniffedType?) -> String? {
        guard let declared = declared?.split(separator: ";").first.map({ String($0).trimmingWhitespace().lowercased() }),
            !declared.isEmpty, declared != "application/octet-stream", declared != "binary/octet-stream"
        else { return nil }
        guard let sniffed else { return nil }
        if declared == sniffed.mediaType { return nil }
        // Office formats are zip files; a sniffer that saw only the first bytes may say zip.
        if sniffed.mediaType == "application/zip", declared.hasPrefix("application/vnd.") { return nil }
        if sniffed.mediaType == "text/plain", declared.hasPrefix("text/") { return nil }
        if sniffed.mediaType == "application/msword", declared.hasPrefix("application/vnd.ms-") { return nil }
        return "declared \(declared), content looks like \(sniffed.mediaType)"
    }
}
