#!/bin/sh
# The example image's entrypoint: prints the rendered greeting.
cat /etc/hello/greeting.txt
