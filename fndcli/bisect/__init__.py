"""`fnd bisect`: the first commit at which a command's result turns from GOOD's to BAD's.

git walks the commits (`commits`), `search` picks the next one to try, `command` rewrites the user's
command line for a step, `judge` says whether a step's run is like GOOD's or BAD's, and `run` drives them.
"""
