"""Spectral rulesets in Charter: JSONPath Plus paths, Spectral's core functions, `spectral:oas` and
`spectral:asyncapi` as Charter runs them, and the engine that applies the rules with a budget."""
