"""Starting every timed run of a benchmark alike (imported by the bench scripts).

A build leaves hundreds of MB for the kernel to write back; without a `sync` first, that
write-back falls into the next contender's run. So every timed run starts after `sync`
(outside its time). In bench-recipes this favours the one-by-one series (the write-back
between its recipes is left out of their times; `build --all` pays its own).

Left as they are, and why (BENCH.md, "… what this machine's state does to a cold build"): the
scripts delete a cache between runs where they always have (bench-debian the arm64 and the
two-arch ones; it keeps every amd64 cache). This machine is a VM whose free memory is handed
back to its host: memory freed by a delete is still backed, while runs that follow one
another without deleting take fresh pages and their system time grows run by run (0.9, 1.8,
2.7 s). Its root is ext4 without a journal, which skips inodes freed in the last minute when
creating files, so a delete costs the next run some kernel time too (6.3 % of its samples,
0.3 % with nothing deleted)."""
import os


def settle():
    """Before each timed run: nothing of the runs before it is still waiting to be written."""
    os.sync()
