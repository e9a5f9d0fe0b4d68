// JSON core micro-benchmark: parses an NDJSON file line by line in three ways
// and prints the throughput of each, to compare with `jq -c .` on the same file.
//
//   swift run -c release json-bench FILE.ndjson
//
// Modes: full parse + compact write (what `jq -c .` does), full parse only,
// and the receiver's field scan (validate everything, extract 5 fields).
import Foundation
import JSON

let arguments = CommandLine.arguments
guard arguments.count >= 2, let data = FileManager.default.contents(atPath: arguments[1]) else {
    FileHandle.standardError.write(Data("usage: json-bench FILE.ndjson\n".utf8))
    exit(2)
}
let bytes = [UInt8](data)
var lines: [ArraySlice<UInt8>] = []
var start = 0
for (index, byte) in bytes.enumerated() where byte == 0x0A {
    if index > start { lines.append(bytes[start..<index]) }
    start = index + 1
}
if start < bytes.count { lines.append(bytes[start...]) }
let lineArrays = lines.map { Array($0) }

func measure(_ name: String, _ body: ([UInt8]) throws -> Int) rethrows {
    let clock = ContinuousClock()
    var sink = 0
    let elapsed = try clock.measure {
        for line in lineArrays { sink &+= try body(line) }
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let mb = Double(bytes.count) / 1_048_576
    let label = name.padding(toLength: 30, withPad: " ", startingAt: 0)
    print(
        label
            + String(format: "%8.3f s  %8.1f MB/s  %9.0f docs/s  (check %d)", seconds, mb / seconds, Double(lineArrays.count) / seconds, sink & 0xFF))
}

let query = JSONFieldQuery([["event_type"], ["action"], ["data", "company", "id"], ["data", "company_id"], ["data", "candidate", "id"]])
let scanner = JSONFieldScanner(query)
print("\(lineArrays.count) documents, \(bytes.count) bytes")
try measure("parse + write compact") { JSONWriter.bytes(try JSONParser.parse($0)).count }
try measure("parse only") { try JSONParser.parse($0).typeName.count }
try measure("field scan (receiver)") { try scanner.scan($0).values.count }
try measure("Foundation JSONSerialization") { line in
    (try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?.count ?? 0
}
