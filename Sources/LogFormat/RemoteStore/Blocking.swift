// The storage library's readers are synchronous; the S3 client is async. This bridges the two for callers on a
// thread of their own (auditq's main thread, a test's), never from inside Swift's cooperative pool.
import Dispatch
import Synchronization

enum Blocking {
    /// Runs `body` to completion and returns what it returned, blocking the calling thread meanwhile.
    static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        Task {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }
}

/// Runs `work` over `items` with at most `width` in flight, keeping the order of `items` in the answer.
func concurrentMap<T: Sendable, R: Sendable>(
    _ items: [T], width: Int, _ work: @escaping @Sendable (T) async throws -> R
) async throws -> [R] {
    try await withThrowingTaskGroup(of: (Int, R).self) { group in
        var out = [R?](repeating: nil, count: items.count)
        var next = 0
        while next < items.count && next < width {
            let i = next
            group.addTask { (i, try await work(items[i])) }
            next += 1
        }
        while let (i, r) = try await group.next() {
            out[i] = r
            if next < items.count {
                let j = next
                group.addTask { (j, try await work(items[j])) }
                next += 1
            }
        }
        return out.map { $0! }
    }
}
