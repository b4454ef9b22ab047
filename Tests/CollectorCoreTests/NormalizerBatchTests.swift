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
            var expected = batch
            for i in expected.indices {
                n.deriveAuditFields(&expected[i], from: .otlpGRPCTraces)
                n.normalize(&expected[i])
            }
            n.normalize(&batch, from: .otlpGRPCTraces)
            for i in batch.indices where batch[i] != expected[i] {
                Issue.record("seed \(seed): event \(i) of \(batch.count) differs from the same event normalised alone")
            }
        }
    }
}
