"""The signature: column types, the compiled checker of inputs and outputs, and the one output comparison."""
