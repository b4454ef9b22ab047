// Verification across local data directories and a bucket: every segment object fetched whole (fresh, never from
// the cache) and checked like a local file, its key against its seal and the SHA-256 it was shipped with; the
// bucket's tombstones; each node's chain over what is local and what is remote together; and the shipped ledgers
// of the local directories against the listing, so a segment deleted from the bucket is named by its key.
import Crypto
import Foundation
import LogFormat
import ObjectStore
import StoreQuery
import Synchronization

/// The outcome for a bucket, and the local outcomes with their chains judged together with it.
public struct CombinedVerification: Sendable {
    /// The bucket's segments (paths are `s3://bucket/key`) and the problems that belong to it.
    public var bucket: StoreVerification
    /// Each local directory's outcome, its chain problems replaced by those of the chain across both.
    public var local: [(directory: DataDirectory, outcome: StoreVerification)]
    /// Problems of the chains across local and remote (each named by the segment or sequence concerned).
    public var chainProblems: [IntegrityProblem]

    public var isValid: Bool { bucket.isValid && local.allSatisfy(\.outcome.isValid) && chainProblems.isEmpty }
}

extension BucketSegments {
    /// Verifies the bucket against the local directories' outcomes (from `Verifier.verifyDirectory`).
    /// `progress` is called with (objects done, objects in all, bytes done).
    public func verify(
        local: [(directory: DataDirectory, outcome: StoreVerification)], options: VerifyOptions,
        progress: (@Sendable (Int, Int, Int) -> Void)? = nil
    ) throws -> CombinedVerification {
        let width = max(1, min(4, self.width))
        let (objects, tombstones) = try Blocking.run { () async throws -> ([ListedObject], [(String, [UInt8])]) in
            let nodes = try await self.nodes()
            let all = try await concurrentMap(nodes, width: self.width) { try await self.objects(node: $0) }
                .flatMap { $0 }
            let tombKeys = all.filter {
                if case .tombstone? = BucketLayout.parse($0.key) { return true }
                return false
            }
            let tombs = try await concurrentMap(tombKeys, width: self.width) { o in
                (o.key, try await self.client.get(self.bucket, key: o.key).bytes)
            }
            return (all, tombs)
        }
        let segments = objects.filter {
            if case .segment? = BucketLayout.parse($0.key) { return true }
            return false
        }
        let scratch = cache.root + "/verify-\(getpid())"
        try FileIO.makeDirectories(scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let done = Counter()
        let results = try Blocking.run {
            try await concurrentMap(Array(segments.enumerated()), width: width) { (i, o) in
                let v = try await self.verifyObject(o, scratch: scratch + "/\(i).seg", options: options)
                let (n, b) = done.add(v.verification?.bytesChecked ?? 0)
                progress?(n, segments.count, b)
                return v
            }
        }
        let verified = results.compactMap(\.verification)
        var outcome = StoreVerification(segments: verified, storeProblems: [])
        for case .gone(let p) in results { outcome.storeProblems.append(p) }
        var remoteChain: [(path: String, seal: SegmentSeal)] = verified.compactMap { v in v.seal.map { (v.path, $0) } }
        for (key, bytes) in tombstones {
            let path = url(key)
            do throws(LogFormatError) {
                let t = try Tombstone.decode(bytes, path: path)
                outcome.expired.append(t)
                remoteChain.append((path, t.seal))
                guard case .tombstone(let node, let seq)? = BucketLayout.parse(key), node == t.seal.nodeID,
                    seq == t.seal.sequence
                else {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .tombstoneInvalid, file: path,
                            expected: BucketLayout.tombstoneKey(node: t.seal.nodeID, sequence: t.seal.sequence),
                            found: key, detail: "the tombstone's key does not match the segment it records"))
                    continue
                }
                outcome.storeProblems +=
                    Verifier.signatureProblems(
                        seal: t.seal, signature: t.signature, options: options, file: path, what: "the tombstone's seal"
                    ).problems
            } catch {
                outcome.storeProblems.append(
                    IntegrityProblem(.tombstoneInvalid, file: path, offset: error.offset, detail: error.message))
            }
        }

        // The shipped ledgers: every key a local collector shipped and checked must still be in the bucket.
        let listedKeys = Set(objects.map { bucket.key($0.key) })
        for (d, _) in local {
            let ledger = d.root + "/shipped"
            for name in (try? FileIO.listDirectory(ledger)) ?? [] where name.hasSuffix(".seg") {
                guard let text = try? FileIO.readFile(ledger + "/" + name),
                    let key = String(decoding: text, as: UTF8.self).split(separator: "\n").first.map(String.init),
                    key.hasPrefix(bucket.prefix.isEmpty ? "" : bucket.prefix + "/")
                else { continue }
                // Expired by policy in the bucket: the tombstone stands for it (its chain link is checked below).
                let relative = String(key.dropFirst(bucket.prefix.isEmpty ? 0 : bucket.prefix.count + 1))
                if case .segment(let node, _, let sequence)? = BucketLayout.parse(relative),
                    listedKeys.contains(bucket.key(BucketLayout.tombstoneKey(node: node, sequence: sequence)))
                {
                    continue
                }
                if !listedKeys.contains(key) {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .missingSegment, file: "s3://\(bucket.bucket)/\(key)",
                            expected: "the object \(d.root)/shipped/\(name) records as shipped and checked",
                            found: "nothing", detail: "shipped from \(d.root), no longer in the bucket"))
                }
            }
        }

        // Chains across local and remote: a sequence present locally is judged by its local copy (the bucket's
        // copy was checked above on its own).
        var localSeals: [(path: String, seal: SegmentSeal)] = []
        var localChainAlone: [DataDirectory: Set<IntegrityProblem>] = [:]
        for (d, o) in local {
            let seals =
                o.segments.compactMap { v in v.seal.map { (v.path, $0) } }
                + o.expired.map { (d.tombstonePath(sequence: $0.seal.sequence), $0.seal) }
            localSeals += seals
            localChainAlone[d] = Set(Verifier.chainProblems(seals))
        }
        struct ID: Hashable {
            var node: NodeID
            var sequence: UInt64
        }
        let localIDs = Set(localSeals.map { ID(node: $0.seal.nodeID, sequence: $0.seal.sequence) })
        let union =
            localSeals + remoteChain.filter { !localIDs.contains(ID(node: $0.seal.nodeID, sequence: $0.seal.sequence)) }
        let chain = Verifier.chainProblems(union)
        let adjusted = local.map { (d, o) -> (directory: DataDirectory, outcome: StoreVerification) in
            var o = o
            let alone = localChainAlone[d] ?? []
            o.storeProblems.removeAll { alone.contains($0) }
            return (d, o)
        }
        return CombinedVerification(bucket: outcome, local: adjusted, chainProblems: chain)
    }

    /// One segment object, fetched whole into `scratch` and verified there; problems name its URL.
    func verifyObject(_ o: ListedObject, scratch: String, options: VerifyOptions) async throws
        -> ObjectOutcome
    {
        let path = url(o.key)
        let data: RangedData
        let head: ObjectInfo?
        do {
            async let d = client.get(bucket, key: o.key)
            async let h = client.head(bucket, key: o.key)
            (data, head) = try await (d, h)
        } catch let e as ObjectStoreError where e.code == .notFound {
            return .gone(IntegrityProblem(.missingSegment, file: path, detail: "listed, then gone: \(e.message)"))
        }
        stats.got(data.bytes.count)
        try FileIO.writeAtomically(data.bytes, to: scratch, directory: (scratch as NSString).deletingLastPathComponent)
        defer { try? FileIO.remove(scratch) }
        var v = Verifier.verifySegment(path: scratch, options: options)
        v.path = path
        v.problems = v.problems.map {
            var p = $0
            if p.file == scratch { p.file = path }
            return p
        }
        if let stored = head?.metadata["sha256"] {
            let actual = SHA256.hash(data: data.bytes).map { String(format: "%02x", $0) }.joined()
            if stored.lowercased() != actual {
                v.problems.append(
                    IntegrityProblem(
                        .blockDamaged, file: path, expected: "SHA-256 \(stored) (stored when shipped)",
                        found: "SHA-256 \(actual)", detail: "the object differs from what was shipped"))
            }
        }
        if let seal = v.seal {
            let expected = BucketLayout.segmentKey(seal)
            if expected != o.key {
                v.problems.append(
                    IntegrityProblem(
                        .unexpectedSegment, file: path, expected: expected, found: o.key,
                        detail: "the key does not match the seal (node, day of the first record, sequence)"))
            }
        }
        return .verified(v)
    }
}

/// What became of one listed object.
enum ObjectOutcome: Sendable {
    case verified(SegmentVerification)
    /// Listed, then not there when fetched.
    case gone(IntegrityProblem)

    var verification: SegmentVerification? {
        if case .verified(let v) = self { return v }
        return nil
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let state = Mutex((n: 0, bytes: 0))
    func add(_ bytes: Int) -> (Int, Int) {
        state.withLock {
            $0.n += 1
            $0.bytes += bytes
            return ($0.n, $0.bytes)
        }
    }
}
