"""The embedded tasks: instructions with checkable constraints (the generator, the parser of a
constraint list, the sampled reference answers shipped beside it) and IFEval's instruction format.

May import: nothing else in backends.core.
"""
