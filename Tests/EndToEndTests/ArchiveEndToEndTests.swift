import Crypto
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TestServers
import Testing

/// A file store on 127.0.0.1 that issues S3-v2-style signed URLs
/// (`Signature` = percent-encoded base64 HMAC over path and `Expires`) and
/// checks them byte-exact: a client that re-encodes `%2B`/`%3D` gets 403, as
/// it would from S3. Expired URLs get 403 too.
final class SignedFileServer: Sendable {
    struct File: Sendable {
        var bytes: [UInt8]
        var contentType = "application/octet-stream"
        /// Answer 503 this many times first.
        var failures = 0
        /// Stream in 64 KiB pieces with this pause between them.
        var chunkDelay: Duration = .zero
        /// Hold the response until `release()`.
        var gated = false
        /// Answer 302 to this location instead.
        var redirect: String?
    }

    let secret = SymmetricKey(data: Array("file-server-secret".utf8))
    let files = Mutex<[String: File]>([:])
    /// Paths of requests that passed the signature check, in arrival order.
    let served = Mutex<[String]>([])
    /// Requests refused with 403 (bad signature or expired).
    let refused = Mutex<[String]>([])
    let gate = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    let baseURL = Mutex("")

    func add(_ path: String, _ file: File) {
        files.withLock { $0[path] = file }
    }

    func signature(path: String, expires: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("GET\n\(expires)\n\(path)".utf8), using: secret)
        return Data(mac).base64EncodedString()
            .replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: "/", with: "%2F").replacingOccurrences(of: "=", with: "%3D")
    }

    /// A URL valid until `expires` (unix seconds).
    func signedURL(_ path: String, expires: Int64) -> String {
        "\(baseURL.withLock { $0 })\(path)?AWSAccessKeyId=TestKey&Signature=\(signature(path: path, expires: expires))&Expires=\(expires)"
    }

    func release() {
        let waiters = gate.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func respond(_ request: Request) async throws -> Response {
        let path = request.uri.path
        // The raw query, as sent: nothing here decodes it.
        var parameters: [String: String] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { parameters[String(parts[0])] = String(parts[1]) }
        }
        // As S3 answers: a wrong signature is `SignatureDoesNotMatch`, an expired
        // URL `AccessDenied` "Request has expired"; `/opaque403/` paths answer a
        // 403 without a body (a proxy or storage fault nobody explains).
        guard let expires = parameters["Expires"].flatMap({ Int64($0) }),
            parameters["Signature"] == signature(path: path, expires: expires)
        else {
            refused.withLock { $0.append(path) }
            return Response(
                status: .forbidden, headers: [.contentType: "application/xml"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string:
                            "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>"
                    )))
        }
        guard expires > Int64(Date().timeIntervalSince1970) else {
            refused.withLock { $0.append(path) }
            return Response(
                status: .forbidden, headers: [.contentType: "application/xml"],
                body: .init(byteBuffer: ByteBuffer(string: "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")))
        }
        if path.hasPrefix("/opaque403/") {
            refused.withLock { $0.append(path) }
            return Response(status: .forbidden)
        }
        guard var file = files.withLock({ $0[path] }) else { return Response(status: .notFound) }
        served.withLock { $0.append(path) }
        if file.failures > 0 {
            file.failures -= 1
            add(path, file)
            return Response(status: .serviceUnavailable)
        }
        if let redirect = file.redirect { return Response(status: .found, headers: [.location: redirect]) }
        if file.gated {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let open = gate.withLock { state -> Bool in
                    if state.open { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if open { continuation.resume() }
            }
        }
        let bytes = file.bytes
        let delay = file.chunkDelay
        let headers: HTTPFields = [.contentType: file.contentType]
        if delay == .zero {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: bytes.count) { writer in
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + (64 << 10), bytes.count)
                    try await writer.write(ByteBuffer(bytes: bytes[offset..<end]))
                    offset = end
                    try await Task.sleep(for: delay)
                }
                try await writer.finish(nil)
            })
    }

    func run<T: Sendable>(_ body: @Sendable (SignedFileServer) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/**") { request, _ in try await self.respond(request) }
        // A download still held by the gate must not keep the server from stopping.
        defer { release() }
        return try await withLocalHTTPServer(router, label: "file-server") { baseURL in
            self.baseURL.withLock { $0 = baseURL }
            defer { self.release() }
            return try await body(self)
        }
    }
}

@Suite("CV archive against a signed-URL file server", .serialized)
struct ArchiveEndToEndTests {
    static let company = "04b9171e-6d74-451f-a8e3-9bc3cf2b2954"
    static var inOneHour: Int64 { Int64(Date().timeIntervalSince1970) + 3600 }

    /// A mapping directory holding the bundled cv-archive mapping, optionally edited.
    func mappings(_ edit: (String) -> String = { $0 }) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jb-archive-mappings-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bundled = try String(contentsOfFile: MappingsEndToEndTests.bundledMappings + "/cv-archive.json", encoding: .utf8)
        try edit(bundled).write(toFile: directory + "/cv-archive.json", atomically: true, encoding: .utf8)
        return directory
    }

    func daemon(mappings: String, parallel: Int = 4, dataDir: String? = nil, floorMB: Int = 1) -> Daemon {
        Daemon(
            dataDir: dataDir,
            environment: [
                "JOBYLON_BRIDGE_AUDIT_LOG": "0",
                "JOBYLON_BRIDGE_MAPPINGS": mappings,
                // The test server is http on loopback: it must be listed explicitly.
                "ARCHIVE_ALLOWED_HOSTS": "127.0.0.1",
                "JOBYLON_BRIDGE_ARCHIVE_PARALLEL": "\(parallel)",
                "JOBYLON_BRIDGE_ARCHIVE_FREE_SPACE_FLOOR_MB": "\(floorMB)",
                "JOBYLON_BRIDGE_ARCHIVE_MAX_RETRY_SECONDS": "2",
            ])
    }

    /// The documented candidate example, hired, with its files replaced.
    func candidate(id: String, cv: String?, coverLetter: String? = nil, others: [String] = [], answerFile: String? = nil) throws -> [UInt8] {
        var root = try #require(try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("candidate-new"))) as? [String: Any])
        var data = try #require(root["data"] as? [String: Any])
        var candidate = try #require(data["candidate"] as? [String: Any])
        candidate["id"] = id
        var files: [String: Any] = ["cv": cv ?? NSNull(), "cover_letter": coverLetter ?? NSNull()]
        for index in 1...5 { files["other_\(index)"] = index <= others.count ? others[index - 1] : NSNull() }
        candidate["files"] = files
        var answers = (candidate["answers"] as? [[String: Any]] ?? []).filter { ($0["answer_type"] as? String) != "file" }
        if let answerFile { answers.append(["id": 2, "question_id": 2, "answer_type": "file", "text": answerFile]) }
        candidate["answers"] = answers
        data["candidate"] = candidate
        root["data"] = data
        return Array(try JSONSerialization.data(withJSONObject: root))
    }

    func jobs(_ daemon: Daemon) throws -> [Row] {
        try daemon.query { db in try Row.fetchAll(db, sql: "SELECT id, item, subject_id, state, attempts, last_error, capture FROM jobs ORDER BY id")
        }
    }

    func describeJobs(_ daemon: Daemon) -> String {
        let rows = (try? jobs(daemon)) ?? []
        return rows.map { "\($0["item"] as String): \($0["state"] as String) \($0["last_error"] as String? ?? "")" }.joined(separator: "; ")
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
    }

    @Test func filesAreArchivedByteExactWithTheirMetadata() async throws {
        let cv = Array("%PDF-1.7\n".utf8) + (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let letter = [0x50, 0x4B, 0x03, 0x04] + Array("........word/document.xml".utf8) + (0..<50_000).map { UInt8(truncatingIfNeeded: $0) }
        let note = Array("Jag bifogar mina betyg.\n".utf8)
        try await SignedFileServer().run { server in
            server.add("/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf", .init(bytes: cv, contentType: "application/pdf"))
            server.add(
                "/applications/1/3/harald-sigurdsson/letter.docx",
                .init(bytes: letter, contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"))
            server.add("/applications/1/3/harald-sigurdsson/betyg.txt", .init(bytes: note, contentType: "image/png"))
            server.add("/applications/1/3/harald-sigurdsson/copy-of-cv.pdf", .init(bytes: cv, contentType: "application/pdf"))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            let candidateID = "c0ffee00-0000-4000-8000-000000000001"
            let expires = Self.inOneHour
            let body = try candidate(
                id: candidateID,
                cv: server.signedURL("/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf", expires: expires),
                coverLetter: server.signedURL("/applications/1/3/harald-sigurdsson/letter.docx", expires: expires),
                others: [server.signedURL("/applications/1/3/harald-sigurdsson/betyg.txt", expires: expires)])
            #expect(try await daemon.post(body).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE kind = 'archive' AND state = 'done'") == 3
                }, "\(describeJobs(daemon))")
            // A hand re-send with fresh URLs and one more attachment that is the CV again: the
            // delivered files are skipped by the ledger, the copy is recognised by its content.
            let resend = try candidate(
                id: candidateID,
                cv: server.signedURL("/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf", expires: expires + 1),
                coverLetter: server.signedURL("/applications/1/3/harald-sigurdsson/letter.docx", expires: expires + 1),
                others: [
                    server.signedURL("/applications/1/3/harald-sigurdsson/betyg.txt", expires: expires + 1),
                    server.signedURL("/applications/1/3/harald-sigurdsson/copy-of-cv.pdf", expires: expires + 1),
                ])
            #expect(try await daemon.post(resend).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE kind = 'archive' AND state IN ('done', 'skipped')") == 7
                }, "\(describeJobs(daemon))")
            let states = try daemon.query { db in try String.fetchAll(db, sql: "SELECT item || ':' || state FROM jobs WHERE id > 3 ORDER BY item") }
            #expect(states == ["cover_letter:skipped", "cv:skipped", "other-1:skipped", "other-2:done"])
            let copyCapture = try daemon.query { db in try String.fetchOne(db, sql: "SELECT CAST(capture AS TEXT) FROM jobs WHERE item = 'other-2'") }
            #expect(copyCapture?.contains("\"duplicate\":true") == true)
            #expect(server.refused.withLock { $0 }.isEmpty, "every signature arrived byte-exact")

            let records = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT * FROM archive_files ORDER BY kind") }
            #expect(records.map { $0["kind"] as String }.sorted() == ["cover_letter", "cv", "other-1"], "identical content is stored once")
            let archive = (daemon.dataDir as NSString).appendingPathComponent("archive")
            let cvRecord = try #require(records.first { $0["kind"] as String == "cv" })
            let cvPath: String = cvRecord["path"]
            #expect(cvPath.hasPrefix("\(Self.company)/\(candidateID)/cv-") && cvPath.hasSuffix(".pdf"))
            #expect(FileManager.default.contents(atPath: archive + "/" + cvPath) == Data(cv))
            #expect(cvRecord["sha256"] as String == SHA256.hash(data: cv).map { String(format: "%02x", $0) }.joined())
            #expect(cvRecord["size"] as Int64 == Int64(cv.count))
            #expect(cvRecord["original_name"] as String? == "mycv_22ac07f3.pdf")
            #expect(cvRecord["source_url"] as String == server.baseURL.withLock { $0 } + "/applications/1/3/harald-sigurdsson/mycv_22ac07f3.pdf")
            #expect(cvRecord["url_expiry"] as Int64? == expires * 1000)
            let letterRecord = try #require(records.first { $0["kind"] as String == "cover_letter" })
            #expect((letterRecord["path"] as String).hasSuffix(".docx"))
            #expect(letterRecord["type_mismatch"] as String? == nil)
            let noteRecord = try #require(records.first { $0["kind"] as String == "other-1" })
            #expect(noteRecord["type_mismatch"] as String? == "declared image/png, content looks like text/plain", "flagged, not refused")
            #expect((noteRecord["path"] as String).hasSuffix(".txt"))

            // Not world-readable: files 0600, directories 0700; the sidecar says the same as the record.
            #expect(Self.mode(archive + "/" + cvPath) == 0o600)
            #expect(Self.mode(archive + "/" + cvPath + ".json") == 0o600)
            #expect(Self.mode(archive + "/\(Self.company)/\(candidateID)") == 0o700)
            #expect(Self.mode(archive) == 0o700)
            let sidecarBytes = try #require(FileManager.default.contents(atPath: archive + "/" + cvPath + ".json"))
            let sidecar = try #require(try JSONSerialization.jsonObject(with: sidecarBytes) as? [String: Any])
            #expect(sidecar["sha256"] as? String == cvRecord["sha256"] as String)
            #expect(sidecar["candidate_id"] as? String == candidateID)
            #expect(!(sidecar["source_url"] as? String ?? "?").contains("Signature"))

            let listed = try daemon.cli(["archive", "list", "--candidate", candidateID])
            #expect(listed.status == 0)
            #expect(listed.output.contains("cv\t\(cv.count)\t") && listed.output.contains("cover_letter") && listed.output.contains("type mismatch"))
            let verified = try daemon.cli(["archive", "verify"])
            #expect(verified.status == 0 && verified.output.contains("verified 3 file(s): 0 problem(s), 0 unrecorded"), "\(verified.output)")
            // One flipped byte is found.
            var corrupted = cv
            corrupted[100] ^= 0xFF
            try Data(corrupted).write(to: URL(fileURLWithPath: archive + "/" + cvPath))
            let reverified = try daemon.cli(["archive", "verify"])
            #expect(reverified.status == 1 && reverified.output.contains("corrupt: \(cvPath)"), "\(reverified.output)")

            // No signed URL, file path or name in the log.
            let log = daemon.log(tail: 200_000)
            #expect(!log.contains("Signature") && !log.contains("harald-sigurdsson") && !log.contains("mycv"))
            let metrics = try await daemon.get("/metrics").text
            #expect(metrics.contains("jobylon_bridge_archive_downloads_total{outcome=\"archived\"} 3"))
            #expect(metrics.contains("jobylon_bridge_archive_downloads_total{outcome=\"duplicate\"} 1"))
        }
    }

    @Test func aURLExpiredAtReceiptIsExpiredWithoutAFetch() async throws {
        try await SignedFileServer().run { server in
            server.add("/old/cv.pdf", .init(bytes: Array("%PDF-1.4".utf8)))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            let expired = Int64(Date().timeIntervalSince1970) - 60
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-000000000002", cv: server.signedURL("/old/cv.pdf", expires: expired))
                ).status == 200)
            #expect(try await daemon.waitFor { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "expired" })
            let job = try #require(try jobs(daemon).first)
            let reason = try #require(job["last_error"] as String?)
            #expect(reason.contains("before the webhook arrived") && reason.contains("not requested"))
            #expect(job["attempts"] as Int == 0, "created expired: never claimed, never attempted")
            #expect(server.served.withLock { $0 }.isEmpty && server.refused.withLock { $0 }.isEmpty, "nothing was fetched")
            let metrics = try await daemon.get("/metrics").text
            #expect(metrics.contains("jobylon_bridge_archive_expired_total 1"))
            #expect(daemon.log(tail: 20_000).contains("ALERT archive"))
        }
    }

    @Test func aServerFailingThenRecoveringBeforeTheDeadlineIsArchived() async throws {
        try await SignedFileServer().run { server in
            let content = Array("%PDF-1.5 recovered".utf8)
            server.add("/flaky/cv.pdf", .init(bytes: content, failures: 2))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-000000000003", cv: server.signedURL("/flaky/cv.pdf", expires: Self.inOneHour))
                ).status == 200)
            #expect(
                try await daemon.waitFor(timeout: 30) { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "done"
                })
            let job = try #require(try jobs(daemon).first)
            #expect(job["attempts"] as Int == 3)
            #expect(server.served.withLock { $0 }.count == 3)
            let attempts = try daemon.query { db in try Row.fetchAll(db, sql: "SELECT outcome, detail FROM job_attempts ORDER BY attempt") }
            #expect(attempts.map { $0["outcome"] as String } == ["retry", "retry", "done"])
            #expect((attempts.first?["detail"] as String?) == "HTTP 503")
        }
    }

    /// Regression: a signature fault was retried until the deadline and then
    /// reported as "signed URL expired" (with 7-day URLs ~2,000 attempts).
    @Test func aSignatureFaultIsDeadAtOnceAsWhatItIs() async throws {
        try await SignedFileServer().run { server in
            server.add("/cv.pdf", .init(bytes: Array("%PDF".utf8)))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            let url = server.signedURL("/cv.pdf", expires: Self.inOneHour).replacingOccurrences(of: "Signature=", with: "Signature=x")
            #expect(try await daemon.post(try candidate(id: "c0ffee00-0000-4000-8000-000000000014", cv: url)).status == 200)
            #expect(
                try await daemon.waitFor(timeout: 30) { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "dead"
                },
                "\(describeJobs(daemon))")
            let job = try #require(try jobs(daemon).first)
            #expect(job["attempts"] as Int == 1)
            #expect((job["last_error"] as String? ?? "").contains("SignatureDoesNotMatch"))
            #expect(!(job["last_error"] as String? ?? "").contains("expired"))
            #expect(!daemon.log(tail: 20_000).contains("ALERT archive"))
        }
    }

    /// Regression: a 404 ended the job dead without a log line.
    @Test func aMissingFileIsDeadWithAWarningNamingTheJob() async throws {
        try await SignedFileServer().run { server in
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            let url = server.signedURL("/gone/cv.pdf", expires: Self.inOneHour)
            #expect(try await daemon.post(try candidate(id: "c0ffee00-0000-4000-8000-000000000015", cv: url)).status == 200)
            #expect(
                try await daemon.waitFor(timeout: 30) { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "dead"
                })
            let job = try #require(try jobs(daemon).first)
            let log = daemon.log(tail: 20_000)
            #expect(log.contains("the file is not at its signed URL"))
            #expect(log.contains("job=\(job["id"] as Int64)"))
        }
    }

    @Test func a403BeforeExpiryIsRetriedAndExpiresWithTheDeadline() async throws {
        try await SignedFileServer().run { server in
            server.add("/opaque403/cv.pdf", .init(bytes: Array("%PDF".utf8)))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            // A 403 without a readable body, on a URL that expires in 15 seconds
            // (retries are at most 2 s apart here, so there is room for several even
            // when a loaded machine delays routing, which runs at low priority).
            let expires = Int64(Date().timeIntervalSince1970) + 15
            let url = server.signedURL("/opaque403/cv.pdf", expires: expires)
            #expect(try await daemon.post(try candidate(id: "c0ffee00-0000-4000-8000-000000000004", cv: url)).status == 200)
            #expect(
                try await daemon.waitFor(timeout: 30) { db in
                    try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "expired"
                },
                "\(describeJobs(daemon))")
            let job = try #require(try jobs(daemon).first)
            #expect((job["attempts"] as Int) >= 2, "a 403 before the expiry is retried")
            // Which of the three deadline reasons depends on where the expiry falls:
            // a 403 past it, a retry that would pass it, or a retry claimed after it.
            let reason = job["last_error"] as String? ?? ""
            #expect(["after the signed URL's expiry", "passed after", "before it could be fetched"].contains { reason.contains($0) }, "\(reason)")
            #expect(server.refused.withLock { $0 }.count == job["attempts"] as Int)
        }
    }

    @Test func downloadsWaitWhileAVolumeIsBelowTheFreeSpaceFloor() async throws {
        try await SignedFileServer().run { server in
            server.add("/cv.pdf", .init(bytes: Array("%PDF".utf8)))
            // A floor no disk here can keep (1 PiB).
            let daemon = daemon(mappings: try mappings(), floorMB: 1 << 30)
            try daemon.start()
            defer { daemon.stop() }
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-000000000005", cv: server.signedURL("/cv.pdf", expires: Self.inOneHour))
                ).status == 200)
            #expect(
                try await daemon.waitFor { db in
                    try String.fetchOne(db, sql: "SELECT last_error FROM jobs WHERE kind = 'archive' AND state = 'pending'")?.contains(
                        "below the floor") == true
                }, "\(describeJobs(daemon))")
            #expect(server.served.withLock { $0 }.isEmpty, "nothing is fetched while the floor is not kept")
        }
    }

    @Test func dueDownloadsRunEarliestDeadlineFirst() async throws {
        try await SignedFileServer().run { server in
            server.add("/gate/cv.pdf", .init(bytes: Array("%PDF gate".utf8), gated: true))
            let now = Int64(Date().timeIntervalSince1970)
            let deadlines: [(String, Int64)] = [("late", now + 5 * 3600), ("soon", now + 600), ("middle", now + 3 * 3600), ("later", now + 4 * 3600)]
            for (name, _) in deadlines { server.add("/edf/\(name).pdf", .init(bytes: Array("%PDF \(name)".utf8))) }
            let daemon = daemon(mappings: try mappings(), parallel: 1)
            try daemon.start()
            defer { daemon.stop() }
            // The only transfer slot is taken by a download that hangs until released.
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-0000000000a0", cv: server.signedURL("/gate/cv.pdf", expires: now + 7200))
                ).status == 200)
            for _ in 0..<200 where server.served.withLock({ $0 }).isEmpty { try await Task.sleep(for: .milliseconds(25)) }
            #expect(server.served.withLock { $0 } == ["/gate/cv.pdf"])
            for (index, (name, expires)) in deadlines.enumerated() {
                let body = try candidate(
                    id: "c0ffee00-0000-4000-8000-0000000000b\(index)", cv: server.signedURL("/edf/\(name).pdf", expires: expires))
                #expect(try await daemon.post(body).status == 200)
            }
            server.release()
            #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 5 })
            #expect(server.served.withLock { $0 } == ["/gate/cv.pdf", "/edf/soon.pdf", "/edf/middle.pdf", "/edf/later.pdf", "/edf/late.pdf"])
        }
    }

    @Test func unsafeDownloadsAreRefusedWithAClearReason() async throws {
        try await SignedFileServer().run { server in
            let port = server.baseURL.withLock { $0 }.split(separator: ":").last.map(String.init) ?? "0"
            // The mapping allows "localhost" as a public host: https only, public addresses only.
            let directory = try mappings {
                $0.replacingOccurrences(of: #""allowed_hosts": ["jobylon.com", "*.amazonaws.com"]"#, with: #""allowed_hosts": ["localhost"]"#)
                    .replacingOccurrences(of: #""max_bytes": 52428800"#, with: #""max_bytes": 100000"#)
            }
            server.add("/redirect/cv.pdf", .init(bytes: [], redirect: "https://localhost:\(port)/internal/secret.pdf"))
            server.add("/big/cv.pdf", .init(bytes: Array(repeating: 0x41, count: 250_000)))
            server.add("/fine/cv.pdf", .init(bytes: Array("%PDF fine".utf8)))
            let daemon = daemon(mappings: directory)
            try daemon.start()
            defer { daemon.stop() }
            let cases: [(String, String?)] = [
                ("c0ffee00-0000-4000-8000-0000000000c1", "https://files.evil.example/cv.pdf?Expires=\(Self.inOneHour)"),
                ("c0ffee00-0000-4000-8000-0000000000c2", server.signedURL("/redirect/cv.pdf", expires: Self.inOneHour)),
                ("c0ffee00-0000-4000-8000-0000000000c3", server.signedURL("/big/cv.pdf", expires: Self.inOneHour)),
                ("../../etc", server.signedURL("/fine/cv.pdf", expires: Self.inOneHour)),
            ]
            for (id, url) in cases {
                #expect(try await daemon.post(try candidate(id: id, cv: url)).status == 200)
            }
            #expect(
                try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'dead'") == 4 },
                "\(describeJobs(daemon))")
            let reasons = Dictionary(uniqueKeysWithValues: try jobs(daemon).map { ($0["subject_id"] as String, $0["last_error"] as String? ?? "") })
            #expect(reasons["c0ffee00-0000-4000-8000-0000000000c1"]?.contains("host files.evil.example is not in the archive allow-list") == true)
            #expect(reasons["c0ffee00-0000-4000-8000-0000000000c2"]?.contains("redirect 1 to https://localhost:") == true)
            #expect(
                reasons["c0ffee00-0000-4000-8000-0000000000c2"]?.contains("localhost resolved to") == true
                    && reasons["c0ffee00-0000-4000-8000-0000000000c2"]?.contains("a loopback address") == true,
                "\(reasons["c0ffee00-0000-4000-8000-0000000000c2"] ?? "")")
            #expect(reasons["c0ffee00-0000-4000-8000-0000000000c3"]?.contains("larger than the mapping's max_bytes (100000 bytes)") == true)
            #expect(reasons["../../etc"]?.contains("path traversal") == true)
            #expect(!server.served.withLock { $0 }.contains("/fine/cv.pdf"), "a refused name is refused before the fetch")
            #expect(!server.served.withLock { $0 }.contains("/internal/secret.pdf"))
            let archive = (daemon.dataDir as NSString).appendingPathComponent("archive")
            #expect(try FileManager.default.contentsOfDirectory(atPath: archive) == [".partial"], "nothing was filed")
            #expect(try FileManager.default.contentsOfDirectory(atPath: archive + "/.partial").isEmpty, "no temp file left behind")
        }
    }

    @Test func aRestartMidDownloadCleansTheTempFileAndResumes() async throws {
        let content = Array("%PDF-1.6\n".utf8) + (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try await SignedFileServer().run { server in
            server.add("/slow/cv.pdf", .init(bytes: content, contentType: "application/pdf", chunkDelay: .milliseconds(40)))
            let directory = try mappings()
            let first = daemon(mappings: directory)
            try first.start()
            let candidateID = "c0ffee00-0000-4000-8000-0000000000d1"
            #expect(try await first.post(try candidate(id: candidateID, cv: server.signedURL("/slow/cv.pdf", expires: Self.inOneHour))).status == 200)
            let partial = first.dataDir + "/archive/.partial"
            var seen: [String] = []
            for _ in 0..<400 {
                seen = (try? FileManager.default.contentsOfDirectory(atPath: partial)) ?? []
                if let name = seen.first, ((try? FileManager.default.attributesOfItem(atPath: partial + "/" + name)[.size]) as? Int ?? 0) > 200_000 {
                    break
                }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(seen.count == 1, "a download is in progress")
            first.kill9()
            let candidateDirectory = first.dataDir + "/archive/\(Self.company)/\(candidateID)"
            #expect(!FileManager.default.fileExists(atPath: candidateDirectory), "nothing under a final name before the download completed")

            let second = daemon(mappings: directory, dataDir: first.dataDir)
            try second.start()
            defer { second.stop() }
            #expect(second.log(tail: 50_000).contains("removed downloads a previous run left unfinished"))
            let left = (try? FileManager.default.contentsOfDirectory(atPath: partial)) ?? []
            #expect(!left.contains(seen.first ?? "?"), "the old temp file is gone")
            #expect(
                try await second.waitFor(timeout: 30) { db in try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE kind = 'archive'") == "done"
                })
            let files = try FileManager.default.contentsOfDirectory(atPath: candidateDirectory).sorted()
            #expect(files.count == 2 && files[0].hasPrefix("cv-") && files[1] == files[0] + ".json")
            #expect(FileManager.default.contents(atPath: candidateDirectory + "/" + files[0]) == Data(content))
            #expect(try FileManager.default.contentsOfDirectory(atPath: partial).isEmpty)
        }
    }

    @Test func purgeRemovesOnlyWhatIsPastRetention() async throws {
        try await SignedFileServer().run { server in
            server.add("/keep/cv.pdf", .init(bytes: Array("%PDF keep".utf8)))
            server.add("/drop/cv.pdf", .init(bytes: Array("%PDF drop".utf8)))
            let daemon = daemon(mappings: try mappings())
            try daemon.start()
            defer { daemon.stop() }
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-0000000000e1", cv: server.signedURL("/keep/cv.pdf", expires: Self.inOneHour))
                ).status == 200)
            #expect(
                try await daemon.post(
                    try candidate(id: "c0ffee00-0000-4000-8000-0000000000e2", cv: server.signedURL("/drop/cv.pdf", expires: Self.inOneHour))
                ).status == 200)
            #expect(try await daemon.waitFor { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM archive_files") == 2 })
            // One record reaches the end of its retention (as if a year had passed for it).
            var config = Configuration()
            config.busyMode = .timeout(5)
            try await DatabaseQueue(path: daemon.dataDir + "/bridge.sqlite", configuration: config).write { db in
                try db.execute(sql: "UPDATE archive_files SET retain_until = 1000 WHERE subject_id = 'c0ffee00-0000-4000-8000-0000000000e2'")
            }
            let paths = Dictionary(
                uniqueKeysWithValues: try daemon.query { db in
                    try Row.fetchAll(db, sql: "SELECT subject_id, path FROM archive_files").map { ($0["subject_id"] as String, $0["path"] as String) }
                })
            let archive = daemon.dataDir + "/archive/"
            let dry = try daemon.cli(["archive", "purge", "--dry-run"])
            #expect(
                dry.status == 0 && dry.output.contains("would delete [1] \(paths["c0ffee00-0000-4000-8000-0000000000e2"] ?? "?")")
                    && dry.output.contains("would delete 1 file(s)"), "\(dry.output)")
            #expect(
                FileManager.default.fileExists(atPath: archive + (paths["c0ffee00-0000-4000-8000-0000000000e2"] ?? "?")), "a dry run deletes nothing")
            let real = try daemon.cli(["archive", "purge"])
            #expect(real.status == 0 && real.output.contains("deleted 1 file(s)"), "\(real.output)")
            #expect(!FileManager.default.fileExists(atPath: archive + (paths["c0ffee00-0000-4000-8000-0000000000e2"] ?? "?")))
            #expect(!FileManager.default.fileExists(atPath: archive + (paths["c0ffee00-0000-4000-8000-0000000000e2"] ?? "?") + ".json"))
            #expect(
                !FileManager.default.fileExists(atPath: archive + "\(Self.company)/c0ffee00-0000-4000-8000-0000000000e2"),
                "the empty candidate directory went too")
            #expect(FileManager.default.fileExists(atPath: archive + (paths["c0ffee00-0000-4000-8000-0000000000e1"] ?? "?")))
            #expect(
                try daemon.query { db in try String.fetchAll(db, sql: "SELECT subject_id FROM archive_files") } == [
                    "c0ffee00-0000-4000-8000-0000000000e1"
                ])
            #expect(try daemon.cli(["archive", "verify"]).output.contains("verified 1 file(s): 0 problem(s), 0 unrecorded"))
            // Erasure removes the remaining candidate's archived file with everything else of theirs.
            let erased = try daemon.cli(["erase", "--candidate", "c0ffee00-0000-4000-8000-0000000000e1"])
            #expect(
                erased.status == 0 && erased.output.contains("deleting archived \(paths["c0ffee00-0000-4000-8000-0000000000e1"] ?? "?")"),
                "\(erased.output)")
            #expect(!FileManager.default.fileExists(atPath: archive + (paths["c0ffee00-0000-4000-8000-0000000000e1"] ?? "?")))
            #expect(try daemon.query { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM archive_files") } == 0)
            #expect(
                try daemon.query { db in
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM inbox WHERE subject_id = 'c0ffee00-0000-4000-8000-0000000000e1' AND body IS NOT NULL")
                } == 0)
        }
    }
}
