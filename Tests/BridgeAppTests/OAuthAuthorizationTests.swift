import Testing

@testable import BridgeApp

@Suite("oauth authorize --listen: the redirect URI it announces and accepts")
struct OAuthLoopbackRedirectTests {
    @Test func withoutARegisteredURITheBoundPortAndAnIPLiteralAreUsed() throws {
        #expect(
            try OAuthAuthorization.loopbackRedirect(host: "127.0.0.1", port: 0, boundPort: 41234, registered: nil).uri
                == "http://127.0.0.1:41234/callback")
        #expect(
            try OAuthAuthorization.loopbackRedirect(host: "::1", port: 8765, boundPort: 8765, registered: nil).uri == "http://[::1]:8765/callback")
    }

    @Test func aRegisteredURIMustBeLoopbackOnTheListenedPort() throws {
        let fixed = try OAuthAuthorization.loopbackRedirect(
            host: "127.0.0.1", port: 8765, boundPort: nil, registered: "http://127.0.0.1:8765/fx/back")
        #expect(fixed.uri == "http://127.0.0.1:8765/fx/back" && fixed.path == "/fx/back")
        #expect(throws: OAuthAuthorization.Failure.self) {
            try OAuthAuthorization.loopbackRedirect(host: "127.0.0.1", port: 9000, boundPort: nil, registered: "http://127.0.0.1:8765/back")
        }
        #expect(throws: OAuthAuthorization.Failure.self) {
            try OAuthAuthorization.loopbackRedirect(host: "127.0.0.1", port: 0, boundPort: nil, registered: "http://127.0.0.1:8765/back")
        }
        #expect(throws: OAuthAuthorization.Failure.self) {
            try OAuthAuthorization.loopbackRedirect(host: "127.0.0.1", port: 443, boundPort: nil, registered: "https://partner.example/oauth/back")
        }
    }
}
