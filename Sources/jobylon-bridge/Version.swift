import ArgumentParser
import CurlClient

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of jobylon-bridge and of the libraries it talks through.")

    func run() throws {
        print("jobylon-bridge \(BridgeVersion.current)")
        print(Curl.versionDescription)
    }
}
