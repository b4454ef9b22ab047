import Foundation
import LogFormat
import Logging
import OTLPBridge
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import CollectorCore

/// The `retention:` section of the collector's file, and the collector running the retention job on its own
/// schedule (the real `collector serve` process), off the ingest path.
@Suite(.serialized, .ownThreads) struct RetentionScheduleTests {
    @Test func retentionSectionIsReadAndCheckedWithTheRest() throws {
        let c = try CollectorConfig.parse(
            yaml: """
                data: /var/lib/audit
                retention:
                  archive_after_days: 3
                  expire_after_days: 90
                  schedule_interval_seconds: 600
                  legal_holds:
                    - {name: case-1, user: alice, from: 2026-01-01, to: 2026-01-02}
                """)
        #expect(c.retention.archiveAfterDays == 3)
        #expect(c.retention.expireAfterDays == 90)
        #expect(c.retention.scheduleIntervalSeconds == 600)
        #expect(c.retention.legalHolds.first?.user == "alice")
        #expect(try CollectorConfig.parse(yaml: "data: x\n").retention == RetentionPolicy())
        do {
            _ = try CollectorConfig.parse(
                yaml: "retention:\n  expire_after: 3\n  legal_holds: [{name: a}]\n", source: "c.yaml")
            Issue.record("a bad retention section was accepted")
        } catch {
            #expect(error.messages.contains("c.yaml: unknown key retention.expire_after"))
            #expect(error.messages.contains { $0.hasPrefix("c.yaml: retention.legal_holds[0] (a) covers nothing") })
        }
    }

    @Test func collectorArchivesOnItsScheduleWhileServing() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        // Three sealed segments of traffic from 2025, well past one day old.
        var options = WriterOptions()
        options.maxSegmentRecords = 400
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try SyntheticLoad.write(
            into: DataDirectory(data), configuration: .init(seed: 5, days: 1, requestsPerDay: 150), requests: 150,
            options: options, batchEvents: 300,
            logger: logger)
        let before = try DataDirectory(data).loadCatalog().entries
        #expect(before.count >= 2 && before.allSatisfy { $0.tier == .hot })
        let config = data + ".yaml"
        try "retention:\n  archive_after_days: 1\n  schedule_interval_seconds: 1\n".write(
            toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }

        let collector = try CollectorProcessTests.Running(data: data, extra: ["--config", config])
        // Ingest keeps being answered while the job runs.
        let request: [UInt8] = try OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: 7, 20))
            .serializedBytes()
        let (status, _) = try await collector.post("/v1/traces", request, type: "application/x-protobuf")
        #expect(status == 200)
        let deadline = Date().addingTimeInterval(30)
        var archived: [CatalogEntry] = []
        while Date() < deadline {
            archived = (try? DataDirectory(data).loadCatalog().entries.filter { $0.tier == .archive }) ?? []
            if archived.count == before.count { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(archived.map(\.seal) == before.map(\.seal))
        collector.stop(signal: SIGTERM)
        #expect(collector.process.terminationStatus == 0)
        // The collector's own segment (sealed at shutdown: 20 spans and its completeness ledger) is hot and
        // chained after the archived ones.
        let outcome = Verifier.verifyDirectory(DataDirectory(data))
        #expect(outcome.problems.isEmpty, "\(outcome.problems)")
        #expect(try DataDirectory(data).loadCatalog().entries.contains { $0.tier == .hot && $0.seal.recordCount == 21 })
    }
}
