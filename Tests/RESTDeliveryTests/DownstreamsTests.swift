import Mapping
import Testing

@testable import RESTDelivery

@Suite("Downstreams: which gate and which metric label a URL belongs to")
struct DownstreamsTests {
    @Test func theOriginIsSchemeHostAndPortWithoutAUserPart() {
        #expect(Downstreams.origin(url: "https://API.Fortnox.se/3/employees?x=1") == "https://api.fortnox.se")
        #expect(Downstreams.origin(url: "http://127.0.0.1:8080/oauth/token#f") == "http://127.0.0.1:8080")
        #expect(Downstreams.origin(url: "https://client:s3cret@auth.example/token") == "https://auth.example")
        #expect(Downstreams.origin(url: "https://a@b@auth.example:8443") == "https://auth.example:8443")
        #expect(Downstreams.key(url: "https://hr.example/v1", limits: RequestLimits(), companyID: "C") == "https://hr.example")
    }
}
