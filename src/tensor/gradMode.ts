import { FiberRef } from "effect"

/**
 * Whether ops record onto the autograd tape (torch.is_grad_enabled). `noGrad` in src/autograd turns it off
 * for a region; kernel traces (Recording) note it, so tests can check the critique runs without gradient.
 */
export const GradEnabled: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(true)
