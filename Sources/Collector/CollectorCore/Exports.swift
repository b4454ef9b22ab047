// The parsers moved to their own module (so the fuzz targets build without the server stack) stay part of
// CollectorCore's API: everything importing CollectorCore sees them as before.
@_exported import CollectorParsers
