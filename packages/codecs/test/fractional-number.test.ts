// fractionalNumber finds a number written as a value that is not an integer, where it is, and
// (with readAsIntegerOnly) only one JSON.parse would read as an integer anyway.
import { describe, expect, it } from 'vitest';
import { fractionalNumber } from '../src/index.js';

describe('fractionalNumber', () => {
  it('finds the first non-integer number with its top-level and innermost members, skipping strings', () => {
    expect(fractionalNumber('{"a":1,"b":{"c":[2,3.5]}}')).toEqual({ field: 'b', member: 'c', token: '3.5' });
    expect(fractionalNumber('{"s":"1.5","q":5e-1}')).toEqual({ field: 'q', member: 'q', token: '5e-1' });
    expect(fractionalNumber('{"q":1.0,"p":1e2,"r":-2.50e1}')).toBeUndefined();
    expect(fractionalNumber('{"q":1}')).toBeUndefined();
  });

  it('names the member whose array holds the number, not the last member of an object before it in that array', () => {
    expect(fractionalNumber('{"a":[{"b":1},1.5]}')).toEqual({ field: 'a', member: 'a', token: '1.5' });
    expect(fractionalNumber('{"op":"order","order":[{"symbol":"X","clientOrderId":"c"},9007199254740990.5]}', true)?.member).toBe('order');
    expect(fractionalNumber('{"order":[{"qty":1},{"price":2,"qty":1.0000000000000001}]}', true)).toEqual({ field: 'order', member: 'qty', token: '1.0000000000000001' });
  });

  it('with readAsIntegerOnly, only numbers JSON.parse reads as an integer', () => {
    expect(fractionalNumber('{"id":1.5,"qty":1}', true)).toBeUndefined();
    expect(fractionalNumber('{"id":1.5,"price":9007199254740990.5}', true)).toEqual({ field: 'price', member: 'price', token: '9007199254740990.5' });
    expect(fractionalNumber('{"order":[{"qty":1.0000000000000001}]}', true)).toEqual({ field: 'order', member: 'qty', token: '1.0000000000000001' });
    expect(JSON.parse('1.0000000000000001')).toBe(1);
  });

  it('skipField passes over a number directly in that top-level member only', () => {
    const text = '{"id":2.0000000000000001,"order":{"id":3.0000000000000001,"qty":1}}';
    expect(fractionalNumber(text, true)).toMatchObject({ field: 'id', token: '2.0000000000000001' });
    expect(fractionalNumber(text, true, 'id')).toMatchObject({ field: 'order', member: 'id', token: '3.0000000000000001' });
    expect(fractionalNumber('{"id":2.0000000000000001,"qty":1}', true, 'id')).toBeUndefined();
    expect(fractionalNumber('{"id":[2.0000000000000001]}', true, 'id')).toMatchObject({ field: 'id' });
  });
});
