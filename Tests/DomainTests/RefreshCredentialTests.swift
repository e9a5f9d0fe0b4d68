import Clocks
import Domain
import Testing

@Suite("Refresh credentials: which one a company uses, when it is spent, what an answer means")
struct RefreshCredentialTests {
    let t0 = Timestamp(seconds: 1_800_000_000)

    func row(_ company: String, expires: Timestamp? = nil, problem: CredentialProblem? = nil) -> RefreshCredential {
        RefreshCredential(name: "fortnox", companyID: company, refreshToken: "rt-\(company)", expiresAt: expires, rotatedAt: t0, problem: problem)
    }

    @Test func aCompanyUsesItsOwnAndTheSharedOneOnlyWhenNoCompanyHasItsOwn() {
        #expect(RefreshCredential.choose([row("")], company: "A")?.companyID == "")
        #expect(RefreshCredential.choose([row("")], company: nil)?.companyID == "")
        #expect(RefreshCredential.choose([row(""), row("A")], company: "A")?.companyID == "A")
        // Once any company has its own, the shared one is nobody's fallback: B is not sent with A's or a shared grant.
        #expect(RefreshCredential.choose([row(""), row("A")], company: "B") == nil)
        #expect(RefreshCredential.choose([row("A")], company: nil) == nil)
        #expect(RefreshCredential.choose([], company: "A") == nil)
    }

    @Test func aStoredProblemOrAnExpiryMakesItUnusableAndTheWeekBeforeIsTheRenewalWindow() {
        #expect(row("").problem(at: t0) == nil)
        #expect(row("", problem: .rejected).problem(at: t0) == .rejected)
        #expect(row("", expires: t0).problem(at: t0) == .expired)
        #expect(row("", expires: t0.adding(.seconds(1))).problem(at: t0) == nil)
        let week: Int64 = 7 * 86_400
        #expect(row("", expires: t0.adding(.seconds(week))).isDueForRenewal(at: t0))
        #expect(!row("", expires: t0.adding(.seconds(week + 1))).isDueForRenewal(at: t0))
        #expect(!row("").isDueForRenewal(at: t0), "no known expiry, nothing to renew")
    }

    @Test func anAnswerSaysWhetherTheTokenOrTheClientWasRefused() {
        #expect(RefreshAnswer.interpret(status: 200, error: nil, interruptedBefore: false) == .issued)
        #expect(RefreshAnswer.interpret(status: 400, error: "invalid_grant", interruptedBefore: false) == .tokenRefused(.rejected))
        #expect(RefreshAnswer.interpret(status: 400, error: "invalid_grant", interruptedBefore: true) == .tokenRefused(.interrupted))
        #expect(RefreshAnswer.interpret(status: 400, error: nil, interruptedBefore: false) == .tokenRefused(.rejected))
        #expect(RefreshAnswer.interpret(status: 401, error: "invalid_client", interruptedBefore: true) == .clientRefused)
        #expect(RefreshAnswer.interpret(status: 400, error: "unauthorized_client", interruptedBefore: false) == .clientRefused)
        for status in [408, 429, 500, 503] {
            #expect(RefreshAnswer.interpret(status: status, error: nil, interruptedBefore: false) == .unavailable)
        }
    }

    @Test(arguments: CredentialProblem.allCases)
    func theHoldReasonIsStoredAndReadBackAndNamesTheCommand(_ problem: CredentialProblem) {
        let reason = HoldReason.authorizationNeeded(credential: "fortnox-se", problem: problem)
        #expect(HoldReason(code: reason.code.rawValue, detail: reason.detail) == reason)
        #expect(reason.description.contains("jobylon-bridge oauth authorize fortnox-se"))
        #expect(HoldReason(code: "oauth_credential", detail: "nonsense") == nil)
    }
}
