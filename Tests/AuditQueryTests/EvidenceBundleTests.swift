import Foundation
import StoreQuery
import Testing

@testable import AuditQuery
@testable import LogFormat

/// Evidence bundles: written from a signed store, verified offline, and tampered with in every way we can
/// think of; each change must be caught and the file (and line or record) named.
@Suite struct EvidenceBundleTests {
    static func query(_ user: String, _ range: ClosedRange<UInt64>) -> EvidenceQuery {
        EvidenceQuery(
            user: user, fromUnixNano: String(range.lowerBound), toUnixNano: String(range.upperBound + 1),
            from: TimeExpression.format(range.lowerBound), to: TimeExpression.format(range.upperBound + 1),
            timeZone: "UTC",
            dataDirectories: ["/data"], commandLine: ["auditq", "evidence", "--user", user], runBy: "tester",
            host: "test-host",
            runAt: "2026-11-27T12:00:00.000000000Z", toolVersion: AuditQVersion.current, unsealedRecordsOmitted: 0,
            requests: 0, records: 0)
    }

    /// A bundle of alice's day from the crafted, signed store, in a fresh directory; the store stays alive.
    static func bundle() throws -> (CraftedStore, String, SealVerifierKey) {
        let s = try CraftedStore(signed: true)
        let store = try AuditStore(directories: [s.directory])
        let requests = try store.activity(user: "alice", timeRange: s.day, includeDuplicates: true)
        let out = s.path + "/bundle"
        let summary = try EvidenceBundle.write(requests: requests, query: query("alice", s.day), store: store, to: out)
        #expect(summary.requests == 2)
        // Trace 1's six records, the retry copy, the second request (its hop is not sealed).
        #expect(summary.records == 8)
        #expect(summary.unsealedOmitted == 1)
        #expect(summary.segments == 2)
        return (s, out, try #require(s.signer).publicKey)
    }

    static func read(_ dir: String, _ name: String) throws -> String {
        try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
    }

    static func write(_ dir: String, _ name: String, _ text: String) throws {
        try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
    }

    /// Makes a current bundle into one of an older `version`: without ledgers.ndjson and the report's
    /// completeness section (before 3; the crafted store has no ledger records to prove), and without
    /// report.html (before 2).
    static func downgrade(_ dir: String, to version: Int) throws {
        if version < 3 {
            try FileManager.default.removeItem(atPath: dir + "/ledgers.ndjson")
            let report = try read(dir, "report.txt")
            let cut = try #require(report.range(of: "\ncompleteness: ", options: .backwards))
            try write(dir, "report.txt", String(report[..<cut.lowerBound]))
        }
        if version < 2 { try FileManager.default.removeItem(atPath: dir + "/report.html") }
        try refreshManifest(dir)
        let manifest = try read(dir, EvidenceBundle.manifestName)
        let current = "\"version\":\(EvidenceBundle.formatVersion)"
        #expect(manifest.contains(current))
        try write(
            dir, EvidenceBundle.manifestName, manifest.replacingOccurrences(of: current, with: "\"version\":\(version)")
        )
    }

    @Test(arguments: [1, 2]) func olderBundlesStillVerifyAndLackNothingOfTheirVersion(version: Int) throws {
        let (s, dir, key) = try Self.bundle()
        _ = s
        try Self.downgrade(dir, to: version)
        let older = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(older.isValid, "\(older.problems)")
        // The same files called the current version lack what it has.
        let manifest = try Self.read(dir, EvidenceBundle.manifestName)
        try Self.write(
            dir, EvidenceBundle.manifestName,
            manifest.replacingOccurrences(
                of: "\"version\":\(version)", with: "\"version\":\(EvidenceBundle.formatVersion)"))
        let current = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(current.problems.contains { $0.expected == "ledgers.ndjson" }, "\(current.problems)")
    }

    /// What a careful forger does after editing a file: brings the manifest in line with it.
    static func refreshManifest(_ dir: String) throws {
        var entries: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        where name != EvidenceBundle.manifestName {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            entries.append(
                "{\"bytes\":\(bytes.count),\"path\":\"\(name)\",\"sha256\":\"\(EvidenceBundle.sha256Hex(bytes))\"}")
        }
        try write(
            dir, EvidenceBundle.manifestName,
            "{\"files\":[\(entries.joined(separator: ","))],\"format\":\"auditq-evidence\",\"version\":\(EvidenceBundle.formatVersion)}\n"
        )
    }

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    @Test func aFreshBundleVerifiesWithAndWithoutTheKey() throws {
        let (s, dir, key) = try Self.bundle()
        _ = s
        let plain = BundleVerifier.verify(bundle: dir)
        #expect(plain.isValid, "\(plain.problems)")
        #expect(plain.proofsValid == 8)
        #expect(plain.filesValid == EvidenceBundle.fileNames.count)
        let signed = BundleVerifier.verify(bundle: dir, publicKeys: [key], requireSignatures: true)
        #expect(signed.isValid, "\(signed.problems)")
        #expect(signed.signaturesValid == 2)
        let other = BundleVerifier.verify(bundle: dir, publicKeys: [SealSigner.generate().publicKey])
        #expect(other.problems.count == 2)
        #expect(other.problems.allSatisfy { $0.kind == .publicKeyNotFound && $0.file == "seals.ndjson" })
        // The files hold what they claim.
        let query = try JSONDecoder().decode(EvidenceQuery.self, from: Data(try Self.read(dir, "query.json").utf8))
        #expect(query.user == "alice" && query.runBy == "tester" && query.unsealedRecordsOmitted == 1)
        #expect(Self.lines(try Self.read(dir, "events.ndjson")).count == 8)
        #expect(try Self.read(dir, "report.txt").contains("retry copy of"))
        #expect(try Self.read(dir, "report.html").contains("retry copy of"))
        #expect(Self.lines(try Self.read(dir, "activity.ndjson")).count == 2)
        #expect(try Self.read(dir, "report.txt").contains("orphan: parent \(s.missingParent.hex) not found"))
    }

    enum Tamper: String, CaseIterable, Sendable {
        case flipByteInEvents, flipByteInProofRecord, dropProofAndFixManifest, dropEventAndFixManifest,
            reorderEventsAndFixManifest,
            swapTwoRecordsAndFixManifest, truncateReport, truncateReportAndFixManifest, editManifestHash,
            manifestNotJSON,
            deleteCSV, addFile, editSealRoot, forgeSignature, editQueryUser, dropRequestAndFixManifest,
            editEventAndProof, editReportHTMLAndFixManifest
    }

    @Test(arguments: Tamper.allCases)
    func everyTamperingIsCaughtAndNamed(_ tamper: Tamper) throws {
        let (s, dir, key) = try Self.bundle()
        _ = s
        var expectFiles: [String] = []
        switch tamper {
        case .flipByteInEvents:
            var text = Array(try Self.read(dir, "events.ndjson").utf8)
            let at = text.firstIndex(of: UInt8(ascii: "7"))!  // a digit somewhere in the first line
            text[at] = UInt8(ascii: "8")
            try Self.write(dir, "events.ndjson", String(decoding: text, as: UTF8.self))
            expectFiles = ["events.ndjson"]
        case .flipByteInProofRecord:
            var lines = Self.lines(try Self.read(dir, "proofs.ndjson"))
            let range = lines[0].range(of: "\"canonical\":\"")!
            var chars = Array(lines[0])
            let i = lines[0].distance(from: lines[0].startIndex, to: range.upperBound) + 10
            chars[i] = chars[i] == "A" ? "B" : "A"
            lines[0] = String(chars)
            try Self.write(dir, "proofs.ndjson", lines.joined(separator: "\n") + "\n")
            expectFiles = ["proofs.ndjson"]
        case .dropProofAndFixManifest:
            var lines = Self.lines(try Self.read(dir, "proofs.ndjson"))
            lines.remove(at: 2)
            try Self.write(dir, "proofs.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["activity.ndjson", "events.ndjson"]
        case .dropEventAndFixManifest:
            var lines = Self.lines(try Self.read(dir, "events.ndjson"))
            lines.remove(at: 1)
            try Self.write(dir, "events.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["events.ndjson"]
        case .reorderEventsAndFixManifest:
            var lines = Self.lines(try Self.read(dir, "events.ndjson"))
            lines.swapAt(0, 3)
            try Self.write(dir, "events.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["events.ndjson"]
        case .swapTwoRecordsAndFixManifest:
            // Exchange the record bytes (and leaf hashes) of two proofs: each is now claimed at the other's place.
            var lines = Self.lines(try Self.read(dir, "proofs.ndjson"))
            var a = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            var b = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
            for k in ["canonical", "leaf_hash"] { (a[k], b[k]) = (b[k], a[k]) }
            lines[0] = String(
                decoding: try JSONSerialization.data(withJSONObject: a, options: [.sortedKeys]), as: UTF8.self)
            lines[1] = String(
                decoding: try JSONSerialization.data(withJSONObject: b, options: [.sortedKeys]), as: UTF8.self)
            try Self.write(dir, "proofs.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["proofs.ndjson"]
        case .truncateReport, .truncateReportAndFixManifest:
            let text = try Self.read(dir, "report.txt")
            try Self.write(dir, "report.txt", String(text.prefix(text.count / 2)))
            if tamper == .truncateReportAndFixManifest { try Self.refreshManifest(dir) }
            expectFiles = ["report.txt"]
        case .editManifestHash:
            let text = try Self.read(dir, EvidenceBundle.manifestName)
            let seals = EvidenceBundle.sha256Hex(
                [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/seals.ndjson"))))
            try Self.write(
                dir, EvidenceBundle.manifestName,
                text.replacingOccurrences(of: seals, with: String(repeating: "0", count: 64)))
            expectFiles = ["seals.ndjson"]
        case .editReportHTMLAndFixManifest:
            // A service renamed in the page only: the page no longer is what the proven records give.
            try Self.write(
                dir, "report.html",
                try Self.read(dir, "report.html").replacingOccurrences(
                    of: "data-service=\"orders\"", with: "data-service=\"billing\""))
            try Self.refreshManifest(dir)
            expectFiles = ["report.html"]
        case .manifestNotJSON:
            let text = try Self.read(dir, EvidenceBundle.manifestName)
            try Self.write(dir, EvidenceBundle.manifestName, String(text.prefix(40)))
            expectFiles = [EvidenceBundle.manifestName]
        case .deleteCSV:
            try FileManager.default.removeItem(atPath: dir + "/events.csv")
            expectFiles = ["events.csv"]
        case .addFile:
            try Self.write(dir, "extra-event.ndjson", "{}\n")
            expectFiles = ["extra-event.ndjson"]
        case .editSealRoot:
            // A seal whose root is replaced (and its fields made to agree): every proof of that segment fails,
            // and the signature no longer verifies.
            var lines = Self.lines(try Self.read(dir, "seals.ndjson"))
            var o = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            var seal = [UInt8](try #require(Data(base64Encoded: o["seal"] as! String)))
            // The first byte of the Merkle root (after version, flags, reserved, node, sequence, count, times).
            seal[56] ^= 0xFF
            let parsed = try seal.withBytes { (b) throws(LogFormatError) in try SegmentSeal.parse(b) }
            o["seal"] = Data(seal).base64EncodedString()
            o["merkle_root"] = parsed.merkleRoot.hex
            lines[0] = String(
                decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            try Self.write(dir, "seals.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["seals.ndjson", "proofs.ndjson"]
        case .forgeSignature:
            var lines = Self.lines(try Self.read(dir, "seals.ndjson"))
            var o = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
            var sig = [UInt8](try #require(Data(base64Encoded: o["signature"] as! String)))
            sig[5] ^= 1
            o["signature"] = Data(sig).base64EncodedString()
            lines[1] = String(
                decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            try Self.write(dir, "seals.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["seals.ndjson"]
        case .editQueryUser:
            try Self.write(
                dir, "query.json",
                try Self.read(dir, "query.json").replacingOccurrences(
                    of: "\"user\":\"alice\"", with: "\"user\":\"bob\""))
            try Self.refreshManifest(dir)
            expectFiles = ["activity.ndjson", "report.txt"]
        case .dropRequestAndFixManifest:
            var lines = Self.lines(try Self.read(dir, "activity.ndjson"))
            lines.removeLast()
            try Self.write(dir, "activity.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["proofs.ndjson", "query.json"]
        case .editEventAndProof:
            // Change the record bytes and recompute the leaf hash, as a forger would: the path no longer reaches the root.
            var lines = Self.lines(try Self.read(dir, "proofs.ndjson"))
            var o = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            var record = [UInt8](try #require(Data(base64Encoded: o["canonical"] as! String)))
            record[record.count / 2] ^= 0x20
            o["canonical"] = Data(record).base64EncodedString()
            o["leaf_hash"] = MerkleTree.leafHash(record).hex
            lines[0] = String(
                decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
            try Self.write(dir, "proofs.ndjson", lines.joined(separator: "\n") + "\n")
            try Self.refreshManifest(dir)
            expectFiles = ["proofs.ndjson"]
        }
        let outcome = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(!outcome.isValid, "\(tamper) went unnoticed")
        let named = Set(outcome.problems.map(\.file))
        for f in expectFiles {
            #expect(named.contains(f), "\(tamper): no problem names \(f); got \(outcome.problems)")
        }
        switch tamper {
        case .flipByteInProofRecord, .editEventAndProof:
            #expect(outcome.problems.contains { $0.file == "proofs.ndjson" && $0.line == 1 && $0.record != nil })
        case .forgeSignature:
            #expect(outcome.problems.contains { $0.kind == .signatureInvalid && $0.line == 2 })
        case .dropProofAndFixManifest:
            #expect(
                outcome.problems.contains {
                    $0.file == "activity.ndjson" && $0.kind == .missingSegment && $0.record != nil
                })
        case .editManifestHash:
            #expect(
                outcome.problems.contains {
                    $0.file == "seals.ndjson" && $0.kind == .rootMismatch
                        && $0.expected?.contains(String(repeating: "0", count: 64)) == true
                })
        default: break
        }
    }
}
