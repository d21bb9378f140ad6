module github.com/samsa-dev/samsa/tools

go 1.26.8
