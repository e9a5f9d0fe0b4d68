import Mapping

/// Loads a mappings directory the same way for `serve`, SIGHUP, `check`,
/// `replay`, `export` and `test`: diagnostics printed, errors counted.
public enum MappingLoader {
    /// Compiles a directory and prints each diagnostic; `strict` makes warnings errors.
    /// `connectors` names packs under `<directory>/connectors/` loaded beside the directory's own files.
    public static func load(directory: String, connectors: [String] = [], variables: VariableSource, strict: Bool, print: (String) -> Void) -> (
        MappingSet, errors: Int, warnings: Int
    ) {
        let (set, diagnostics) = MappingSet.load(directory: directory, connectors: connectors, variables: variables)
        var errors = 0
        var warnings = 0
        for diagnostic in diagnostics {
            var d = diagnostic
            if strict, d.severity == .warning { d.severity = .error }
            if d.severity == .error { errors += 1 } else { warnings += 1 }
            print(d.description)
        }
        return (set, errors, warnings)
    }
}
