package lang

import (
	"fmt"
	"math/big"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// budget is what evaluating one Unikfile may still produce (MaxEvalBytes
// at the start); every function result and evaluated value is charged.
type budget struct {
	left int64
	// spent is set once the budget ran out and that was reported: later
	// calls give unknown values, which evaluation passes over silently,
	// so that one runaway expression gives one diagnostic.
	spent bool
}

func newBudget() *budget { return &budget{left: MaxEvalBytes} }

// charge checks v against the per-value limits and takes its size from
// the budget; the error says which limit it passed.
func (b *budget) charge(v cty.Value) error {
	n, err := valueSize(v, MaxEvalBytes)
	if err != nil {
		return err
	}
	b.left -= n
	if b.left < 0 {
		return fmt.Errorf("evaluating this Unikfile produces more than %d MiB of values; a Unikfile never needs that much: simplify the expression", MaxEvalBytes>>20)
	}
	return nil
}

// valueSize is about how many bytes v holds, stopping early (with an
// error) at the first string or collection over its limit or once the
// total passes limit.
func valueSize(v cty.Value, limit int64) (int64, error) {
	if v.IsNull() || !v.IsKnown() {
		return 1, nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		n := int64(len(v.AsString()))
		if n > MaxStringBytes {
			return 0, fmt.Errorf("a string of %d bytes is longer than a Unikfile's values may be (%d KiB)", n, MaxStringBytes>>10)
		}
		return n, nil
	case ty == cty.Number, ty == cty.Bool:
		return 8, nil
	case ty.IsListType() || ty.IsSetType() || ty.IsMapType() || ty.IsTupleType() || ty.IsObjectType():
		if n := v.LengthInt(); n > MaxElements {
			return 0, fmt.Errorf("a collection of %d elements is larger than a Unikfile's values may be (%d elements)", n, MaxElements)
		}
		var total int64 = 8
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if ty.IsMapType() || ty.IsObjectType() {
				total += int64(len(k.AsString()))
			}
			n, err := valueSize(e, limit-total)
			if err != nil {
				return 0, err
			}
			total += n
			if total > limit {
				return 0, fmt.Errorf("a value of more than %d MiB is larger than a Unikfile's values may be", limit>>20)
			}
		}
		return total, nil
	}
	return 8, nil
}

// bounded wraps a function so that its results are charged to b, and, for
// the functions whose result size follows from their arguments alone
// (range, setproduct), so that an oversized result is refused before it
// is built.
func bounded(name string, f function.Function, b *budget) function.Function {
	spec := &function.Spec{
		Params:   f.Params(),
		VarParam: f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
			if b.spent {
				return cty.UnknownVal(retType), nil
			}
			if err := precheck(name, args); err != nil {
				return cty.NilVal, err
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if err := b.charge(v); err != nil {
				b.spent = true
				return cty.NilVal, err
			}
			return v, nil
		},
	}
	return function.New(spec)
}

// precheck refuses calls whose result would be over the limits, from
// their arguments.
func precheck(name string, args []cty.Value) error {
	switch name {
	case "range":
		// range(end), range(start, end), range(start, end, step)
		var start, end, step = big.NewFloat(0), big.NewFloat(0), big.NewFloat(1)
		nums := make([]*big.Float, 0, len(args))
		for _, a := range args {
			if !a.IsKnown() || a.IsNull() || a.Type() != cty.Number {
				return nil // the function reports it
			}
			nums = append(nums, a.AsBigFloat())
		}
		switch len(nums) {
		case 1:
			end = nums[0]
		case 2:
			start, end = nums[0], nums[1]
		case 3:
			start, end, step = nums[0], nums[1], nums[2]
		}
		if step.Sign() == 0 {
			return nil
		}
		count := new(big.Float).Quo(new(big.Float).Sub(end, start), step)
		if count.Cmp(big.NewFloat(MaxElements)) > 0 {
			c, _ := count.Float64()
			return fmt.Errorf("range of %.0f elements is larger than a Unikfile's values may be (%d elements)", c, MaxElements)
		}
	case "setproduct":
		total := int64(1)
		for _, a := range args {
			if !a.IsKnown() || a.IsNull() || !a.CanIterateElements() {
				return nil
			}
			total *= int64(a.LengthInt())
			if total > MaxElements {
				return fmt.Errorf("setproduct of more than %d elements is larger than a Unikfile's values may be", MaxElements)
			}
		}
	}
	return nil
}
