import CollectorCore
import LogFormat
import PropertyBased
import SyntheticTraffic
import Testing

/// The batch path of the normaliser works out what depends on a resource attribute list once for the events
/// that share it. It must give exactly what the same events get one by one.
@Suite struct NormalizerBatchTests {
    /// Resource lists as decoders hand them out: one array shared by every span of a resource. Clean ones, one
    /// with a SPIFFE id, one with a key under the collector's `audit.` namespace, and hostile ones with secrets.
    static func resources(seed: UInt64) -> [[Attribute]] {
        let sdk: [Attribute] = [
            Attribute("service.name", .string("checkout")), Attribute("telemetry.sdk.name", .string("opentelemetry")),
            Attribute("host.name", .string("node-7")),
        ]
        return [
            [], sdk,
            sdk + [Attribute("k8s.pod.identity", .string("spiffe://cluster.local/ns/shop/sa/checkout"))],
            [Attribute("proxy", .string("spiffe://not a valid id")), Attribute("id", .string("spiffe://td/ok"))],
            sdk + [Attribute("audit.redacted", .array([.string("forged")]))],
            RedactionTests.hostileEvent(seed: seed).0.resourceAttributes,
            RedactionTests.hostileEvent(seed: seed &+ 1).0.resourceAttributes,
            sdk + [Attribute("istio.mesh_id", .string("mesh")), Attribute("token", .string("Bearer opaqueABC123xyz"))],
        ]
    }

    /// Records an issue for each event of `batch` that the batch path normalises otherwise than alone.
    static func expectNormalisedAsOneByOne(
        _ events: [AuditEvent], by n: Normalizer, from receiver: Receiver, seed: UInt64
    ) {
        var batch = events
        var expected = events
        for i in expected.indices {
            n.deriveAuditFields(&expected[i], from: receiver)
            n.normalize(&expected[i])
        }
        n.normalize(&batch, from: receiver)
        for i in batch.indices where batch[i] != expected[i] {
            Issue.record("seed \(seed): event \(i) of \(batch.count) differs from the same event normalised alone")
        }
    }

    @Test func aBatchIsNormalisedAsItsEventsAreOneByOne() async {
        let n = testNormalizer()
        await propertyCheck(count: 200, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let pool = Self.resources(seed: seed)
            var batch: [AuditEvent] = []
            // Runs of events sharing one resource array (and scope), as a request groups them.
            for _ in 0..<(1 + rng.next() % 6) {
                let resource = pool[Int(rng.next() % UInt64(pool.count))]
                let scope = rng.next() % 3 == 0 ? "envoy" : "io.opentelemetry.http"
                for _ in 0..<(1 + rng.next() % 4) {
                    var e =
                        rng.next() % 2 == 0
                        ? RedactionTests.hostileEvent(seed: rng.next()).0
                        : span([
                            Attribute("user.id", .string("u-\(rng.next() % 100)")),
                            Attribute("http.request.method", .string("GET")),
                            Attribute("url.path", .string("/items")),
                        ])
                    e.resourceAttributes = resource
                    e.scope.name = scope
                    batch.append(e)
                }
            }
            Self.expectNormalisedAsOneByOne(batch, by: n, from: .otlpGRPCTraces, seed: seed)
        }
    }

    /// The batch path skips classifying and scanning a key that has the bytes of the clean key at the same
    /// position in the event before. Keys that are equal `String`s with other bytes (U+212A KELVIN SIGN is "K":
    /// `private_Key` names a secret, `private_\u{212A}ey` does not), keys that hold a secret, and keys that move
    /// must still come out as they do one event at a time.
    @Test func accessLinesWithRepeatedKeysAreNormalisedAsOneByOne() async {
        let n = testNormalizer()
        let jwt = TokenFixtures.unsigned(#"{"sub":"x"}"#)
        let keys = [
            "status", "http_user_agent", "password", "Password", "private_key", "private_Key", "private_\u{212A}ey",
            "caf\u{E9}", "cafe\u{301}", "http_cookie", "upstream_http_x_user_id", "x_\(jwt)", "request_uri",
            "a_much_longer_key_than_fifteen_bytes", "a_much_longer_key_than_fifteen_bytez",
        ]
        let values = ["200", "plain", "Bearer opaqueABC123xyz", jwt, "/p?access_token=abc123", "u-7"]
        await propertyCheck(count: 200, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            // Lines that mostly repeat the line before, with a key or two changed, as one sender's lines do.
            var line = (0..<(1 + Int(rng.next() % 8))).map { _ in keys[Int(rng.next() % UInt64(keys.count))] }
            var batch: [AuditEvent] = []
            for _ in 0..<(2 + rng.next() % 10) {
                if rng.next() % 2 == 0 {
                    line[Int(rng.next() % UInt64(line.count))] = keys[Int(rng.next() % UInt64(keys.count))]
                }
                if rng.next() % 8 == 0 { line.append(keys[Int(rng.next() % UInt64(keys.count))]) }
                var e = AuditEvent(kind: .access, startTimeUnixNano: 1)
                e.attributes = line.map { Attribute($0, .string(values[Int(rng.next() % UInt64(values.count))])) }
                batch.append(e)
            }
            Self.expectNormalisedAsOneByOne(batch, by: n, from: .accessNDJSON, seed: seed)
        }
    }

    /// The batch path takes the field map's slot of a key from the event before when the key at the same position
    /// had the same bytes. The field map's keys moving between positions, repeated (the first one counts), missing,
    /// look-alikes one byte off, a key that is an equal `String` with other bytes (`u\u{0301}ser_id` against
    /// `úser_id`), and values that count as absent ("-", empty) must give every event the user, HTTP facts, source
    /// and workload it gets alone. So must keys that may name a workload (XFCC, principals, peer SANs), which the
    /// workload step also remembers by position.
    @Test func accessLinesWithTheFieldMapsKeysMovingAreNormalisedAsOneByOne() async {
        let n = testNormalizer()
        let keys = [
            "request_method", "request_uri", "status", "remote_addr", "upstream_http_x_user_id", "remote_user",
            "upstream_http_x_user_email", "upstream_http_x_user_groups", "http_x_user_groups", "ssl_client_san",
            "start_time", "response_code", "upstream_cluster", "method", "path", "request_methoD", "statuz",
            "remote_user ", "\u{FA}ser_id", "u\u{301}ser_id", "user_id", "msec", "http_user_agent",
            "http_x_forwarded_client_cert", "source.principal", "peer_san", "xx_ssl_client_san", "cert",
        ]
        let values = [
            "GET", "/a?b=c", "200", "u-7", "-", "", "spiffe://td/ns/a/sa/b", "a@example.com", "g1, g2", "404",
            "2026-12-06T10:00:00Z", "By=spiffe://td/ns/p/sa/q;URI=spiffe://td/ns/c/sa/d", "spiffe://td/ns/e/sa/f",
        ]
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            var line = (0..<(1 + Int(rng.next() % 10))).map { _ in keys[Int(rng.next() % UInt64(keys.count))] }
            var batch: [AuditEvent] = []
            for _ in 0..<(2 + rng.next() % 12) {
                switch rng.next() % 4 {
                case 0: line[Int(rng.next() % UInt64(line.count))] = keys[Int(rng.next() % UInt64(keys.count))]
                case 1: line.swapAt(Int(rng.next() % UInt64(line.count)), Int(rng.next() % UInt64(line.count)))
                case 2 where line.count > 1: line.remove(at: Int(rng.next() % UInt64(line.count)))
                default: line.append(keys[Int(rng.next() % UInt64(keys.count))])
                }
                var e = AuditEvent(kind: .access, startTimeUnixNano: 1)
                e.attributes = line.map { Attribute($0, .string(values[Int(rng.next() % UInt64(values.count))])) }
                batch.append(e)
            }
            Self.expectNormalisedAsOneByOne(batch, by: n, from: .accessNDJSON, seed: seed)
        }
    }
}
