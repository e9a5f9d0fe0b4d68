import DurableFiles
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Durable files: temporary name, fsync, rename, directory fsync")
struct DurableFilesTests {
    let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("jb-durable-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func entries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        _ = stat(path, &info)
        return info.st_mode & 0o777
    }

    @Test func wholeFileWriteLeavesOnlyTheFinalNameWithItsMode() throws {
        let path = directory + "/sidecar.json"
        let old = umask(0o022)
        defer { umask(old) }
        try DurableFiles.write(Array("{\"a\":1}\n".utf8), to: path, mode: 0o640)
        #expect(entries() == ["sidecar.json"])
        #expect(FileManager.default.contents(atPath: path) == Data("{\"a\":1}\n".utf8))
        #expect(mode(path) == 0o640)
        // Replacing is atomic too: the old content until the rename, the new after.
        try DurableFiles.write(Array("second".utf8), to: path)
        #expect(FileManager.default.contents(atPath: path) == Data("second".utf8))
        #expect(mode(path) == 0o600)
        #expect(entries() == ["sidecar.json"])
    }

    @Test func aStagingDirectoryHoldsTheTemporaryFile() throws {
        let staging = directory + "/.partial"
        try DurableFiles.makeDirectory(staging)
        try FileManager.default.createDirectory(atPath: directory + "/c1", withIntermediateDirectories: true)
        try DurableFiles.write(Array("{}".utf8), to: directory + "/c1/cv.pdf.json", stagingDirectory: staging)
        #expect((try FileManager.default.contentsOfDirectory(atPath: directory + "/c1")) == ["cv.pdf.json"])
        #expect((try FileManager.default.contentsOfDirectory(atPath: staging)).isEmpty)
    }

    @Test func aModeGivenAtFinishIsTheFilesFinalMode() throws {
        let file = try StagedFile.create(nextTo: directory + "/hires.csv", mode: 0o600)
        #expect(mode(file.temporaryPath) == 0o600)
        try file.append(Array("a;b\n".utf8))
        try file.finish(mode: 0o640)
        try DurableFiles.publish(file.temporaryPath, as: directory + "/hires.csv")
        #expect(mode(directory + "/hires.csv") == 0o640)
    }

    @Test func largeAppendsArriveWhole() throws {
        // Far above a pipe or socket buffer, so a short write would show.
        let chunk = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = try StagedFile.create(nextTo: directory + "/big.csv", mode: 0o600)
        try file.append(chunk)
        try file.append(chunk)
        #expect(file.size == Int64(chunk.count * 2))
        try file.finish()
        #expect(!entries().contains("big.csv"))
        try DurableFiles.publish(file.temporaryPath, as: directory + "/big.csv")
        #expect(entries() == ["big.csv"])
        #expect(FileManager.default.contents(atPath: directory + "/big.csv") == Data(chunk + chunk))
    }

    @Test func discardLeavesNothing() throws {
        let file = try StagedFile.create(nextTo: directory + "/never.csv")
        try file.append(Array("half".utf8))
        file.discard()
        #expect(entries().isEmpty)
    }

    @Test func failuresNameTheFileAndTheReason() throws {
        let missing = directory + "/no-such-folder/file.csv"
        #expect {
            try DurableFiles.write([1, 2, 3], to: missing)
        } throws: { error in
            let message = (error as? IOFailure)?.message ?? ""
            return message.contains("no-such-folder") && message.contains("No such file or directory")
        }
        #expect(entries().isEmpty)
    }

    @Test func directoriesAreCreatedWithTheirModeAndTightened() throws {
        let path = directory + "/archive"
        try DurableFiles.makeDirectory(path, mode: 0o700)
        #expect(mode(path) == 0o700)
        chmod(path, 0o755)
        try DurableFiles.makeDirectory(path, mode: 0o700)
        #expect(mode(path) == 0o700)
    }

    @Test func directoryOfAPath() {
        #expect(DurableFiles.directory(of: "/var/lib/x.csv") == "/var/lib")
        #expect(DurableFiles.directory(of: "/x.csv") == "/")
        #expect(DurableFiles.directory(of: "x.csv") == ".")
    }
}

@Suite("Blocking I/O pool")
struct BlockingIOPoolTests {
    @Test func runsWorkOffTheCallerAndRefusesAfterShutdown() async throws {
        let pool = BlockingIOPool(threads: 2)
        let value = try await pool.run { 21 * 2 }
        #expect(value == 42)
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for n in 0..<16 { group.addTask { try await pool.run { n } } }
            return try await group.reduce(0, +)
        }
        #expect(results == (0..<16).reduce(0, +))
        await pool.shutdown()
        await #expect(throws: IOFailure.self) { try await pool.run { 1 } }
    }

    /// Regression: clean-up after a cancelled download was dropped (NIO's
    /// `runIfActive` skips work of a cancelled task), leaking its descriptor.
    @Test func workOfACancelledTaskStillRuns() async throws {
        let pool = BlockingIOPool(threads: 1)
        let ran = await withTaskGroup(of: Bool.self) { group in
            group.cancelAll()
            group.addTask { (try? await pool.run { true }) ?? false }
            return await group.next() ?? false
        }
        #expect(ran)
        await pool.shutdown()
    }
}
