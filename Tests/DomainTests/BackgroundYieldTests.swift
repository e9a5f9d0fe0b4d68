import Domain
import Synchronization
import Testing

/// A pressure reading that follows a script, one value per look.
final class ScriptedPressure: IngestPressure {
    private let readings: Mutex<[Bool]>
    init(_ readings: [Bool]) { self.readings = Mutex(readings) }
    var isHigh: Bool {
        readings.withLock { readings in readings.count > 1 ? readings.removeFirst() : (readings.first ?? false) }
    }
}

@Suite("Background work giving way to webhooks")
struct BackgroundYieldTests {
    let yield = BackgroundYield(pause: .milliseconds(20), maxDeferral: .milliseconds(50))

    @Test func pausesOnlyUnderPressureAndNeverPastTheDeferralLimit() {
        #expect(yield.pause(underPressure: false, deferredSoFar: .zero) == nil)
        #expect(yield.pause(underPressure: true, deferredSoFar: .zero) == .milliseconds(20))
        #expect(yield.pause(underPressure: true, deferredSoFar: .milliseconds(40)) == .milliseconds(10))
        #expect(yield.pause(underPressure: true, deferredSoFar: .milliseconds(50)) == nil)
    }

    @Test func waitsWhilePressureLastsThenGoesAheadAnyway() async {
        let steps = Mutex<[Duration]>([])
        let record: (Duration) async -> Void = { step in steps.withLock { $0.append(step) } }

        await yield.wait(for: nil, sleep: record)
        await yield.wait(for: ScriptedPressure([false]), sleep: record)
        #expect(steps.withLock { $0 }.isEmpty, "no pressure, no pause")

        await yield.wait(for: ScriptedPressure([true, true, false]), sleep: record)
        #expect(steps.withLock { $0 } == [.milliseconds(20), .milliseconds(20)], "paused until the pressure dropped")

        steps.withLock { $0.removeAll() }
        await yield.wait(for: ScriptedPressure([true]), sleep: record)
        #expect(
            steps.withLock { $0 } == [.milliseconds(20), .milliseconds(20), .milliseconds(10)],
            "pressure that never drops delays a round by 50 ms at most")
    }
}
