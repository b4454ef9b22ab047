// `auditq retention plan|apply`: the plan (or what was done) as a table or one JSON object.
import JSONText
import LogFormat
import StoreQuery

public enum RetentionOutput {
    public static func table(
        _ items: [RetentionPlan.Item], unchanged: Int, problems: [String] = [], applied: Bool, zone: TimeZoneSpec
    )
        -> String
    {
        var rows = [["ACTION", "SEGMENT", "TIER", "RECORDS", "FROM", "TO", "BYTES BEFORE", "BYTES AFTER", "NOTE"]]
        for i in items {
            rows.append([
                i.action.rawValue, i.relativePath, i.tier.description, String(i.recordCount),
                i.recordCount > 0 ? TimeExpression.format(i.minTime, zone: zone) : "-",
                i.recordCount > 0 ? TimeExpression.format(i.maxTime, zone: zone) : "-",
                String(i.bytesBefore), (applied || i.action != .archive ? "" : "~") + String(i.bytesAfter), i.note,
            ])
        }
        var out = items.isEmpty ? "" : Rendering.align(rows) + "\n"
        out += summary(items, unchanged: unchanged, applied: applied)
        for p in problems { out += "\nproblem: " + p }
        return out
    }

    public static func summary(_ items: [RetentionPlan.Item], unchanged: Int, applied: Bool) -> String {
        func n(_ a: RetentionPlan.Action) -> Int { items.filter { $0.action == a }.count }
        let moving = items.filter { $0.action != .held }
        let before = moving.reduce(0) { $0 + $1.bytesBefore }
        let after = moving.reduce(0) { $0 + $1.bytesAfter }
        let verb = applied ? ["archived", "expired", "finished"] : ["to archive", "to expire", "to finish"]
        return
            "\(n(.archive)) \(verb[0]), \(n(.expire)) \(verb[1]), \(n(.held)) held, \(n(.finish)) \(verb[2]), \(unchanged) unchanged; "
            + "bytes \(before) before, \(applied ? "" : "about ")\(after) after"
    }

    public static func json(
        _ items: [RetentionPlan.Item], now: UInt64, unchanged: Int, problems: [String] = [], applied: Bool
    ) -> String {
        func item(_ i: RetentionPlan.Item) -> String {
            "{\"action\":\"\(i.action.rawValue)\",\"segment\":\(JSONString.quote(i.relativePath)),\"tier\":\"\(i.tier)\","
                + "\"sequence\":\(i.sequence),\"records\":\(i.recordCount),\"min_time_unix_nano\":\"\(i.minTime)\","
                + "\"max_time_unix_nano\":\"\(i.maxTime)\",\"bytes_before\":\(i.bytesBefore),\"bytes_after\":\(i.bytesAfter),"
                + "\"bytes_after_estimated\":\(!applied && i.action == .archive),"
                + "\"holds\":[\(i.holds.map(JSONString.quote).joined(separator: ","))],\"note\":\(JSONString.quote(i.note))}"
        }
        return "{\"applied\":\(applied),\"now_unix_nano\":\"\(now)\",\"unchanged\":\(unchanged),\"items\":["
            + items.map(item).joined(separator: ",") + "],\"problems\":["
            + problems.map(JSONString.quote).joined(separator: ",")
            + "],\"summary\":" + JSONString.quote(summary(items, unchanged: unchanged, applied: applied)) + "}"
    }
}
