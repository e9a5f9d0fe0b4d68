import TestSupport
import Testing

@testable import Domain
@testable import FileArchive

@Suite("Archive policy: URLs, hosts, addresses, names, content types")
struct ArchivePolicyTests {
    let jobylonCV =
        "https://jobylon.com/jbl-web-bucket/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf?AWSAccessKeyId=AccessKeyAWSUser&Signature=b8fAztRIN6pZWP%2F0hI4ZSmZevl0%3D&Expires=1708531474"

    @Test func rawURLReadsHostAndPortWithoutTouchingTheText() throws {
        let url = try #require(RawURL(jobylonCV))
        #expect(url.scheme == "https")
        #expect(url.host == "jobylon.com")
        #expect(url.port == nil)
        #expect(url.text == jobylonCV)
        #expect(url.origin == "https://jobylon.com")
        #expect(!url.description.contains("harald"), "descriptions never carry the path")
        let v6 = try #require(RawURL("http://[::1]:8080/x"))
        #expect(v6.host == "::1")
        #expect(v6.port == 8080)
        #expect(RawURL("HTTPS://Files.Example.COM./a")?.host == "files.example.com")
    }

    @Test func rawURLRefusesWhatItCannotReadUnambiguously() {
        for text in [
            "https://jobylon.com@evil.example/cv.pdf",  // userinfo
            "https://evil.example\\@jobylon.com/",  // backslash
            "https://jobylon.com /cv.pdf",  // space
            "https://jobylon%2ecom/cv.pdf",  // percent in host
            "https://:443/", "https://host:0/", "https://host:99999/", "https://host:/",
            "jobylon.com/cv.pdf", "file:///etc/passwd", "https//jobylon.com", "",
        ] {
            #expect(RawURL(text) == nil, "\(text)")
        }
    }

    @Test func redirectLocationsResolveLikeABrowser() throws {
        let base = try #require(RawURL("https://a.example/dir/file.pdf?sig=1"))
        #expect(base.resolving("https://b.example/x?y=%2B")?.text == "https://b.example/x?y=%2B")
        #expect(base.resolving("//c.example/z")?.text == "https://c.example/z")
        #expect(base.resolving("/root?q=1")?.text == "https://a.example/root?q=1")
        #expect(base.resolving("other.pdf")?.text == "https://a.example/dir/other.pdf")
        #expect(base.resolving("?sig=2")?.text == "https://a.example/dir/file.pdf?sig=2")
        #expect(base.resolving("http://169.254.169.254/latest/meta-data")?.host == "169.254.169.254")
        #expect(base.resolving("") == nil)
    }

    @Test func hostPatternsMatchExactHostsAndSubdomains() throws {
        let wildcard = try #require(HostPattern("*.amazonaws.com"))
        #expect(wildcard.matches("bucket.s3.amazonaws.com"))
        #expect(!wildcard.matches("amazonaws.com"))
        #expect(!wildcard.matches("evilamazonaws.com"))
        #expect(!wildcard.matches("amazonaws.com.evil.example"))
        let exact = try #require(HostPattern("jobylon.com"))
        #expect(exact.matches("jobylon.com") && !exact.matches("cdn.jobylon.com"))
        #expect(HostPattern("*") == nil && HostPattern("*.com") == nil && HostPattern("a/b") == nil && HostPattern("") == nil)
    }

    @Test func hostPolicyIsHTTPSOnlyExceptForExplicitlyListedHosts() throws {
        let policy = ArchiveHostPolicy(mappingPatterns: ["files.customer.example"], operatorPatterns: ["127.0.0.1", "*.internal.example"])
        func check(_ text: String) throws -> ArchiveHostPolicy.Decision { policy.check(try #require(RawURL(text))) }
        #expect(try check(jobylonCV) == .allowed(privateAddresses: false))
        #expect(try check("https://bucket.s3.eu-north-1.amazonaws.com/cv.pdf") == .allowed(privateAddresses: false))
        #expect(try check("https://files.customer.example/cv.pdf") == .allowed(privateAddresses: false))
        #expect(try check("http://127.0.0.1:8080/cv.pdf") == .allowed(privateAddresses: true))
        #expect(try check("https://store.internal.example/cv.pdf") == .allowed(privateAddresses: false), "a wildcard is not an explicit listing")
        guard case .refused(let plain) = try check("http://jobylon.com/cv.pdf") else {
            Issue.record("http to a built-in host")
            return
        }
        #expect(plain.contains("plain http"))
        guard case .refused(let other) = try check("https://evil.example/cv.pdf") else {
            Issue.record("unlisted host")
            return
        }
        #expect(other.contains("evil.example") && other.contains("allow-list"))
        guard case .refused(let scheme) = try check("ftp://jobylon.com/cv.pdf") else {
            Issue.record("ftp")
            return
        }
        #expect(scheme.contains("ftp"))
    }

    @Test func addressClassesCoverTheNetworksASignedURLMustNotReach() {
        let refused: [([UInt8], AddressClass)] = [
            ([0, 0, 0, 0], .unspecified), ([127, 0, 0, 1], .loopback), ([127, 9, 9, 9], .loopback),
            ([10, 1, 2, 3], .privateNetwork), ([172, 16, 0, 1], .privateNetwork), ([172, 31, 255, 255], .privateNetwork),
            ([192, 168, 1, 1], .privateNetwork), ([169, 254, 169, 254], .linkLocal), ([100, 64, 0, 1], .carrierGradeNAT),
            ([100, 100, 100, 200], .carrierGradeNAT), ([224, 0, 0, 1], .multicast), ([255, 255, 255, 255], .reserved),
            ([198, 18, 0, 1], .reserved), ([192, 0, 2, 7], .reserved),
            (Array(repeating: 0, count: 16), .unspecified), (Array(repeating: 0, count: 15) + [1], .loopback),
            ([0xFD, 0x00, 0x0E, 0xC2] + Array(repeating: 0, count: 11) + [0x54], .uniqueLocal),  // fd00:ec2::254, AWS metadata
            ([0xFE, 0x80] + Array(repeating: 0, count: 13) + [1], .linkLocal),
            (Array(repeating: 0, count: 10) + [0xFF, 0xFF, 127, 0, 0, 1], .loopback),  // ::ffff:127.0.0.1
            (Array(repeating: 0, count: 10) + [0xFF, 0xFF, 169, 254, 169, 254], .linkLocal),
            ([0x00, 0x64, 0xFF, 0x9B] + Array(repeating: 0, count: 8) + [10, 0, 0, 1], .privateNetwork),  // NAT64 of 10.0.0.1
            ([0xFF, 0x02] + Array(repeating: 0, count: 13) + [1], .multicast),
        ]
        for (bytes, expected) in refused {
            #expect(AddressClass.classify(bytes) == expected, "\(AddressClass.text(bytes))")
        }
        for publicAddress: [UInt8] in [
            [8, 8, 8, 8], [52, 95, 1, 1], [172, 32, 0, 1], [100, 128, 0, 1], [0x2A, 0x05] + Array(repeating: 1, count: 14),
        ] {
            #expect(AddressClass.classify(publicAddress) == nil, "\(AddressClass.text(publicAddress))")
        }
    }

    @Test func directoriesWithTraversalOrOddCharactersAreRefused() throws {
        #expect(
            try ArchiveNames.directorySegments("company-1/aed6532d-2438-4e33-b15b-1f1a20ba1c16") == [
                "company-1", "aed6532d-2438-4e33-b15b-1f1a20ba1c16",
            ])
        for bad in ["../etc", "a/../../b", "/abs/path", "a//b", "a/.hidden", "a/b c", "a/b\u{0}c", "a/ö", "", "a/%2e%2e"] {
            #expect(throws: ArchiveNames.UnsafeName.self, "\(bad)") { try ArchiveNames.directorySegments(bad) }
        }
        let message = try #require(
            { () -> String? in
                do throws(ArchiveNames.UnsafeName) {
                    _ = try ArchiveNames.directorySegments("c/../x")
                    return nil
                } catch { return error.description }
            }())
        #expect(message.contains("traversal"))
    }

    @Test func originalNamesAreCleaned() {
        #expect(ArchiveNames.originalName(urlWithoutQuery: "https://jobylon.com/a/b/mycv_22ac07f3.pdf") == "mycv_22ac07f3.pdf")
        #expect(ArchiveNames.originalName(urlWithoutQuery: "https://x/a/..%2F..%2Fetc%2Fpasswd") == "passwd")
        #expect(ArchiveNames.originalName(urlWithoutQuery: "https://x/a/%2E%2E") == nil)
        #expect(ArchiveNames.originalName(urlWithoutQuery: "https://x/a/cv%0A%1B.pdf") == "cv.pdf")
        #expect(ArchiveNames.originalName(urlWithoutQuery: "https://x/a/Lebenslauf%20J%C3%BCrgen.pdf") == "Lebenslauf Jürgen.pdf")
        #expect(ArchiveNames.clean("..\\..\\windows\\cv.docx") == "cv.docx")
        #expect(ArchiveNames.clean("cv\u{202E}fdp.exe") == "cvfdp.exe", "no right-to-left override tricks")
        #expect(ArchiveNames.fileExtension(of: "cv.PDF") == "pdf")
        #expect(ArchiveNames.fileExtension(of: "cv.p/df") == nil)
        #expect(ArchiveNames.fileExtension(of: "noext") == nil)
    }

    @Test func namesFromRandomBytesNeverLeaveTheirDirectory() {
        var generator = SeededGenerator(seed: 0xA5C1)
        let alphabet = Array("ab./\\%2eEfF0.\u{0}\u{7F} ..-_ö".unicodeScalars)
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...24, using: &generator)
            let text = String(String.UnicodeScalarView((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }))
            if let cleaned = ArchiveNames.originalName(urlWithoutQuery: "https://x/d/" + text) {
                #expect(
                    !cleaned.contains("/") && !cleaned.contains("\\") && !cleaned.hasPrefix(".") && !cleaned.contains("\u{0}"),
                    "\(text.debugDescription)")
            }
            if let segments = try? ArchiveNames.directorySegments(text) {
                #expect(segments.allSatisfy { $0 != ".." && $0 != "." && !$0.isEmpty }, "\(text.debugDescription)")
            }
            // The URL parser never crashes and never changes the text it accepts.
            if let url = RawURL("https://h/" + text) { #expect(url.text == "https://h/" + text) }
        }
    }

    @Test func contentIsSniffedAndMismatchesAreDescribed() {
        #expect(SniffedType.sniff(Array("%PDF-1.7\n".utf8))?.fileExtension == "pdf")
        #expect(SniffedType.sniff([0x50, 0x4B, 0x03, 0x04] + Array("....word/document.xml".utf8))?.fileExtension == "docx")
        #expect(SniffedType.sniff([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])?.fileExtension == "doc")
        #expect(SniffedType.sniff(Array("<!DOCTYPE html><html>".utf8))?.mediaType == "text/html")
        #expect(
            SniffedType.sniff(Array("Hej, jag heter Jürgen".utf8).dropLast(1).map { $0 })?.mediaType == "text/plain",
            "a cut multi-byte character is still text")
        #expect(SniffedType.sniff([0x00, 0x01, 0xFE]) == nil)
        let pdf = SniffedType.sniff(Array("%PDF-1.4".utf8))
        #expect(SniffedType.mismatch(declared: "application/pdf", sniffed: pdf) == nil)
        #expect(SniffedType.mismatch(declared: "application/octet-stream", sniffed: pdf) == nil)
        #expect(SniffedType.mismatch(declared: nil, sniffed: pdf) == nil)
        #expect(SniffedType.mismatch(declared: "image/png; charset=binary", sniffed: pdf) == "declared image/png, content looks like application/pdf")
    }

    @Test func retentionIsPerDataClassAndAMappingMayOnlyShortenIt() {
        let retention = ArchiveRetention(defaultDays: 365, daysByClass: ["cv": 730, "answer": 90])
        #expect(ArchiveRetention.dataClass(ofKind: "other-3") == "other")
        #expect(ArchiveRetention.dataClass(ofKind: "cover_letter") == "cover_letter")
        #expect(retention.days(kind: "cv", mappingOverride: nil) == 730)
        #expect(retention.days(kind: "cv", mappingOverride: 30) == 30)
        #expect(retention.days(kind: "answer-2", mappingOverride: 400) == 90)
        #expect(retention.days(kind: "other-1", mappingOverride: nil) == 365)
    }
}
