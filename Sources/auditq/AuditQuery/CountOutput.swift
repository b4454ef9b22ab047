// Output of `auditq count` (events grouped). Field names are stable: fields are only ever added at the end.
//
// NDJSON, one line per group, largest first
//   {"<key>":"<value>", …,"count":<n>}     (keys as given to --by, with "-" written "_": status_class, …)
// CSV: a header row (the keys, then "count"), then one row per group.
import JSONText
import StoreQuery

public enum CountOutput {
    static func name(_ key: CountKey) -> String { key.rawValue.replacingAll("-", with: "_") }

    public static func table(_ groups: [CountGroup], keys: [CountKey]) -> String {
        var rows = [keys.map { $0.rawValue.uppercased() } + ["COUNT"]]
        for g in groups { rows.append(g.values + [String(g.count)]) }
        return Rendering.align(rows)
    }

    public static func jsonLine(_ g: CountGroup, keys: [CountKey]) -> String {
        var s = "{"
        for (k, v) in zip(keys, g.values) { s += JSONString.quote(name(k)) + ":" + JSONString.quote(v) + "," }
        return s + "\"count\":\(g.count)}"
    }

    public static func csv(_ groups: [CountGroup], keys: [CountKey]) -> String {
        var out = (keys.map(name) + ["count"]).joined(separator: ",") + "\r\n"
        for g in groups { out += (g.values + [String(g.count)]).map(CSVOutput.field).joined(separator: ",") + "\r\n" }
        return out
    }
}
