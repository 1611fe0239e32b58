import type { Catalog } from '../../core/catalog.ts';
import type { Instance } from '../../core/instance.ts';
import { instanceView, leasedInstanceView } from '../views.ts';

export type InstanceOut = ReturnType<typeof instanceView> & Partial<ReturnType<typeof leasedInstanceView>>;

/** The REST instance view, with the lease when `instance` is the version the catalog holds now. */
export function instanceOut(catalog: Catalog, instance: Instance): InstanceOut {
  const entry = catalog.entry(instance);
  return entry !== undefined && entry.instance === instance ? leasedInstanceView(entry) : instanceView(instance);
}
