// Not a valid module: the parser rejects it (exit 1).
func.func @f( {
