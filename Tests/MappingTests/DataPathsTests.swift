import Foundation
import JSON
import TestSupport
import Testing

@testable import Mapping

@Suite("What mappings read of an event, and building only that")
struct DataPathsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func compile(_ text: String, name: String = "t") throws -> MappingFile {
        let (mapping, diagnostics) = MappingCompiler.compile(file: "\(name).json", bytes: Array(text.utf8))
        return try #require(mapping, "\(diagnostics)")
    }

    @Test func pathsStopAtIndexesAndLeaveScopeNamesOut() throws {
        let mapping = try DataPathsTests.compile(
            #"""
            {"name": "t", "when": {"event": "candidate/new", "if": "candidate.status.group == 20"},
             "rest": {"url": "https://x.example/{{ event.type }}/{{ now }}", "body": {
               "a": "{{ candidate.data.iban | iban }}", "b": "{{ job.departments[0].name | default: data.fallback.x }}",
               "c": "{{ candidate.data }}"}}}
            """#)
        #expect(mapping.dataPaths.readsEverything == false)
        #expect(mapping.dataPaths.paths == [["candidate", "status", "group"], ["candidate", "data"], ["job", "departments"], ["fallback", "x"]])
        #expect(!mapping.dataPaths.paths.contains(["event"]) && !mapping.dataPaths.paths.contains(["now"]))
        let whole = try DataPathsTests.compile(
            #"{"name": "w", "when": {"event": "candidate/new"}, "rest": {"url": "https://x.example", "body": {"all": "{{ data | json }}"}}}"#,
            name: "w")
        #expect(whole.dataPaths.readsEverything)
    }

    /// A computed segment reads the whole value before it.
    @Test func aComputedSegmentReadsTheWholeValueBeforeIt() throws {
        let mapping = try DataPathsTests.compile(
            #"{"name": "t", "when": {"event": "candidate/new"}, "rest": {"url": "https://x.example", "body": {"d": "{{ candidate[candidate.key] }}"}}}"#
        )
        #expect(mapping.dataPaths.paths == [["candidate"]])
    }

    @Test func theArchiveDefaultDirectoryCountsAsRead() throws {
        let mapping = try DataPathsTests.compile(
            #"{"name": "a", "when": {"event": "candidate/new"}, "archive": {"files": {"cv": "{{ candidate.files.cv }}"}}}"#, name: "a")
        #expect(mapping.dataPaths.paths == [["candidate", "files", "cv"], ["company", "id"], ["candidate", "id"]])
    }

    /// The bundled mappings render the same from the pruned `data` as from the
    /// whole tree, on the example events and on thousands of damaged copies
    /// (keys removed, values of other types), and the reader refuses exactly
    /// what the parser refuses.
    @Test func bundledMappingsRenderTheSameFromWhatTheyRead() throws {
        let directory = DataPathsTests.root.appendingPathComponent("mappings")
        var mappings: [MappingFile] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        where name.hasSuffix(".json") && name != "schema.json" {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            let (mapping, diagnostics) = MappingCompiler.compile(file: name, bytes: bytes)
            mappings.append(try #require(mapping, "\(diagnostics)"))
        }
        #expect(mappings.count >= 5)
        let eventsDirectory = directory.appendingPathComponent("tests/events")
        var bases: [JSONValue] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: eventsDirectory.path).sorted() {
            bases.append(try JSONParser.parse([UInt8](Data(contentsOf: eventsDirectory.appendingPathComponent(name))), options: .payload))
        }
        let set = MappingSet(mappings: mappings, variables: VariableSource(environment: [:], secretsDirectory: nil))
        var generator = SeededGenerator(seed: 0xDA7A)
        var compared = 0
        for base in bases {
            for round in 0..<150 {
                let event = round == 0 ? base : DataPathsTests.damage(base, using: &generator)
                let body = JSONWriter.bytes(event)
                let full = try JSONParser.parse(body, options: .payload)
                for reader in [set.envelopeReader] + mappings.map({ EnvelopeReader($0.dataPaths) }) {
                    let read = try #require(try reader.read(body))
                    for mapping in mappings {
                        let whole = MappingEvent(
                            type: read.type, action: read.action, data: full["data"] ?? .null, receivedAt: "2026-12-02T00:00:00.000Z", entityKey: "k")
                        let pruned = MappingEvent(
                            type: read.type, action: read.action, data: read.data, receivedAt: "2026-12-02T00:00:00.000Z", entityKey: "k")
                        if reader.paths.union(mapping.dataPaths) != reader.paths { continue }  // the set's reader covers every mapping
                        #expect(
                            mapping.plan(pruned, now: "2026-12-02T00:00:00.000Z") == mapping.plan(whole, now: "2026-12-02T00:00:00.000Z"),
                            "\(mapping.name) on \(JSONWriter.string(event))")
                        compared += 1
                    }
                }
            }
        }
        #expect(compared > 3_000)
        // Invalid bodies: the same refusal as the parser's.
        for bad in [#"{"event_type":"candidate","action":"new","data":{"a":1,"a":2}}"#, #"{"data":{"candidate":{"id":"\ud800"}}}"#, "{"] {
            let bytes = Array(bad.utf8)
            #expect(throws: JSONError.self) { try set.envelopeReader.read(bytes) }
            #expect(throws: JSONError.self) { try JSONParser.parse(bytes, options: .payload) }
        }
    }

    /// A copy with a few members removed or replaced by values of other types.
    static func damage(_ value: JSONValue, using generator: inout SeededGenerator) -> JSONValue {
        let replacements: [JSONValue] = [
            .null, .string(""), .string("x"), (try? JSONParser.parse("7")) ?? .null, .array([]), .object(JSONObject()), .bool(true),
        ]
        func walk(_ value: JSONValue, depth: Int) -> JSONValue {
            switch value {
            case .object(let object):
                var members: [JSONObject.Member] = []
                for member in object.members {
                    let roll = Int.random(in: 0..<40, using: &generator)
                    if roll == 0 && depth > 0 { continue }
                    if roll == 1 && depth > 0, let replacement = replacements.randomElement(using: &generator) {
                        members.append(.init(key: member.key, value: replacement))
                        continue
                    }
                    members.append(.init(key: member.key, value: walk(member.value, depth: depth + 1)))
                }
                return .object(JSONObject(members))
            case .array(let items):
                return .array(items.map { walk($0, depth: depth + 1) })
            default:
                return value
            }
        }
        return walk(value, depth: 0)
    }
}
