module github.com/rewind-sre/rewind/tools/flux

go 1.26.0
