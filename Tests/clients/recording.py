"""A span or log exporter wrapper that records each export's result, shared by the client scripts."""


class Recording:
    """Wraps an exporter to record what it sent and whether the collector acknowledged it."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, batch):
        result = self.inner.export(batch)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True
