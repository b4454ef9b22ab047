// The version auditq reports (`auditq --version`) and writes into evidence bundles.
public enum AuditQVersion {
    public static let current = "0.5.0"
}
