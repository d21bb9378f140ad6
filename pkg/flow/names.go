package flow

import (
	"sort"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

type named interface {
	*samsav1.Source | *samsav1.Flow
	GetName() string
}

func sortByName[T named](xs []T) {
	sort.Slice(xs, func(i, j int) bool { return xs[i].GetName() < xs[j].GetName() })
}
