// Query engine for auditq: filled in by the auditq issue.
import LogFormat
