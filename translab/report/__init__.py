"""The comparison report: figures, the claims table with verdicts, and the self-contained HTML."""
