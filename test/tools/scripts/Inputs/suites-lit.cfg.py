# A three-test lit suite for suites.test: one passes, one fails, one is
# unsupported.
import lit.formats

config.name = "Suites"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".test"]
