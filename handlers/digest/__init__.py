"""The weekly digest to the police groups: last week's figures and one chart."""
