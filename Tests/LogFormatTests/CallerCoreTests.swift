import CPlatform
import Foundation
import Synchronization
import Testing

@testable import LogFormat

/// What `CallerCore` asks of the system: the processor a thread runs on, and a move off one processor that leaves
/// the thread free to run anywhere afterwards.
@Suite struct CallerCoreTests {
    /// The calling thread's allowed processors as the kernel lists them (`Cpus_allowed_list`), nil off Linux.
    static func allowedList() -> String? {
        guard let status = try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }.map(String.init)
    }

    /// How many processors the list names ("0-1", "0,2-3").
    static func count(_ list: String) -> Int {
        list.split(separator: ":").last!.split(separator: ",").reduce(0) { n, part in
            let ends = part.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap { Int($0) }
            return n + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
        }
    }

    /// Runs `body` on a thread of its own and waits for it.
    static func onThread(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread {
            body()
            done.signal()
        }.start()
        done.wait()
    }

    @Test func theProcessorIsOneOfTheMachines() {
        let cpu = cplatform_current_cpu()
        #if os(Linux)
            #expect(cpu >= 0 && Int(cpu) < sysconf(Int32(_SC_NPROCESSORS_CONF)))
        #else
            #expect(cpu == -1)
        #endif
    }

    @Test(
        .enabled(
            if: CallerCoreTests.allowedList().map(CallerCoreTests.count) ?? 0 >= 2,
            "needs Linux and a process that may run on two processors"))
    func aThreadLeavesItsProcessorAndIsNotPinned() throws {
        let before = try #require(Self.allowedList())
        struct Attempt {
            var moved: Int32
            var left: Bool
            var after: String?
            var elsewhere: Int32
            var none: Int32
        }
        let results = Mutex<[Attempt]>([])
        Self.onThread {
            for _ in 0..<5 {
                let cpu = cplatform_current_cpu()
                let moved = cplatform_leave_cpu(cpu)
                let now = cplatform_current_cpu()
                let elsewhere = cplatform_leave_cpu(now == 0 ? 1 : 0)
                let none = cplatform_leave_cpu(-1)
                let attempt = Attempt(
                    moved: moved, left: now != cpu, after: Self.allowedList(), elsewhere: elsewhere, none: none)
                results.withLock { $0.append(attempt) }
            }
        }
        let seen = results.withLock { $0 }
        // The thread may migrate by itself between looking and asking (then nothing is moved): one move is enough.
        #expect(seen.contains { $0.moved == 1 && $0.left }, "\(seen)")
        // Each move widened the affinity again to what it was.
        #expect(seen.allSatisfy { $0.after == before }, "\(seen.map { $0.after }) against \(before)")
        // Asked to leave a processor it is not on, it stays (unless it migrated there meanwhile: once is enough).
        #expect(seen.contains { $0.elsewhere == 0 }, "\(seen.map { $0.elsewhere })")
        #expect(seen.allSatisfy { $0.none == 0 })
    }
}
