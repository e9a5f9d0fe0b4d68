import Foundation
import TestServers
import Testing

@testable import CurlClient

/// libcurl's SFTP against a real OpenSSH server on 127.0.0.1.
@Suite("SFTP through libcurl against OpenSSH", .serialized)
struct CurlSFTPTests {
    static func login(_ server: LocalSSHServer, key: String? = nil, passphrase: String? = nil, hostKey: SFTPHostKey? = nil) -> SFTPLogin {
        SFTPLogin(
            user: server.user, privateKeyFile: key ?? server.userKey, passphrase: passphrase, hostKey: hostKey ?? .sha256(server.hostKeySHA256))
    }

    static func read(_ server: LocalSSHServer, _ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: server.files + "/" + name).map { [UInt8]($0) }
    }

    @Test func uploadRenameAndExistence() async throws {
        let server = try LocalSSHServer()
        try await CurlEngine.with { client in
            let login = Self.login(server)
            let local = server.directory + "/local.csv"
            try Data("a;b\r\n".utf8).write(to: URL(fileURLWithPath: local))
            try await client.sftp(SFTPRequest(url: server.url(".f.csv.part"), login: login, operation: .uploadFile(path: local)))
            #expect(Self.read(server, ".f.csv.part") == Array("a;b\r\n".utf8))
            // An upload truncates: never appends to what is there.
            try await client.sftp(SFTPRequest(url: server.url(".f.csv.part"), login: login, operation: .uploadBytes(Array("x".utf8))))
            #expect(Self.read(server, ".f.csv.part") == Array("x".utf8))
            #expect(try await client.sftp(SFTPRequest(url: server.url("f.csv"), login: login, operation: .exists)) == false)
            try await client.sftp(
                SFTPRequest(
                    url: server.url("f.csv"), login: login,
                    operation: .rename(from: server.files + "/.f.csv.part", to: server.files + "/f.csv")))
            #expect(Self.read(server, "f.csv") == Array("x".utf8))
            #expect(Self.read(server, ".f.csv.part") == nil)
            #expect(try await client.sftp(SFTPRequest(url: server.url("f.csv"), login: login, operation: .exists)))
            // A rename never replaces a file.
            try await client.sftp(SFTPRequest(url: server.url(".f.csv.part"), login: login, operation: .uploadBytes(Array("new".utf8))))
            await #expect(throws: SFTPFailure.self) {
                try await client.sftp(
                    SFTPRequest(
                        url: server.url("f.csv"), login: login,
                        operation: .rename(from: server.files + "/.f.csv.part", to: server.files + "/f.csv")))
            }
            #expect(Self.read(server, "f.csv") == Array("x".utf8))
            // The mode asked for, not curl's 0644.
            var request = SFTPRequest(url: server.url("g.csv"), login: login, operation: .uploadBytes([1]))
            request.fileMode = 0o600
            try await client.sftp(request)
            let mode = try FileManager.default.attributesOfItem(atPath: server.files + "/g.csv")[.posixPermissions] as? Int
            #expect(mode.map { $0 & 0o077 } == 0, "\(String(mode ?? 0, radix: 8))")
        }
    }

    @Test func theHostKeyIsPinned() async throws {
        let server = try LocalSSHServer()
        try await CurlEngine.with { client in
            // The fingerprint with or without ssh-keygen's prefix, and the known_hosts file, all pass.
            let bare = String(server.hostKeySHA256.dropFirst("SHA256:".count))
            for hostKey in [SFTPHostKey.sha256(server.hostKeySHA256), .sha256(bare), .knownHosts(path: server.knownHosts)] {
                try await client.sftp(SFTPRequest(url: server.url("ok"), login: Self.login(server, hostKey: hostKey), operation: .uploadBytes([])))
            }
            let wrong = "SHA256:" + String(repeating: "A", count: 43)
            let unknownHost = server.directory + "/empty_known_hosts"
            FileManager.default.createFile(atPath: unknownHost, contents: Data())
            for hostKey in [SFTPHostKey.sha256(wrong), .knownHosts(path: server.wrongKnownHosts), .knownHosts(path: unknownHost)] {
                let login = Self.login(server, hostKey: hostKey)
                await #expect(throws: SFTPFailure.hostKeyRejected, "\(hostKey)") {
                    try await client.sftp(SFTPRequest(url: server.url("refused"), login: login, operation: .uploadBytes([1])))
                }
            }
            #expect(Self.read(server, "refused") == nil, "nothing is sent to a server whose key does not match")
            #expect((try? String(contentsOfFile: unknownHost, encoding: .utf8)) == "", "an unknown host is never added to known_hosts")
        }
    }

    @Test func keysPassphrasesAndRefusals() async throws {
        let server = try LocalSSHServer()
        try await CurlEngine.with { client in
            try await client.sftp(
                SFTPRequest(
                    url: server.url("p"), login: Self.login(server, key: server.protectedUserKey, passphrase: server.passphrase),
                    operation: .uploadBytes([1])))
            #expect(Self.read(server, "p") == [1])
            for login in [
                Self.login(server, key: server.strangerKey), Self.login(server, key: server.protectedUserKey, passphrase: "wrong"),
                Self.login(server, key: server.directory + "/no-such-key"),
            ] {
                await #expect(throws: SFTPFailure.loginDenied) {
                    try await client.sftp(SFTPRequest(url: server.url("q"), login: login, operation: .uploadBytes([1])))
                }
            }
            // The read-only port: the server refuses every write.
            await #expect(throws: SFTPFailure.permissionDenied) {
                try await client.sftp(SFTPRequest(url: server.url("r", readOnly: true), login: Self.login(server), operation: .uploadBytes([1])))
            }
            #expect(Self.read(server, "r") == nil)
            // A folder that does not exist is not created.
            await #expect(throws: SFTPFailure.notFound) {
                try await client.sftp(SFTPRequest(url: server.url("missing/x"), login: Self.login(server), operation: .uploadBytes([1])))
            }
            server.stop()
            do throws(SFTPFailure) {
                try await client.sftp(SFTPRequest(url: server.url("down"), login: Self.login(server), operation: .uploadBytes([1])))
                Issue.record("a stopped server cannot take an upload")
            } catch {
                guard case .unreachable = error else {
                    Issue.record("a stopped server is unreachable, not \(error)")
                    return
                }
            }
            try server.start()
            try await client.sftp(SFTPRequest(url: server.url("up"), login: Self.login(server), operation: .uploadBytes([1])))
            #expect(Self.read(server, "up") == [1])
        }
    }
}
